"""The attention suite of `pydl bench ops`: pydl's fused kernels (the backend's
attention_forward and attention_backward) against PyTorch's
scaled_dot_product_attention, forward and backward, causal and not, head_dim 64 and 128.

Shapes follow FlashAttention's benchmarks: a fixed number of tokens (batch x seq) and of
hidden units (heads x head_dim), so longer sequences come with smaller batches.

The backward rows time the gradient computation alone, from the forward's saved tensors:
for pydl, attention_backward given the saved output and log-sum-exp; for PyTorch,
torch.autograd.grad on a graph built once and retained (retain_graph=True), which runs
SDPA's backward kernel and nothing else. FLOPs: 4*B*H*L*S*D for the forward, 2.5 times
that for the backward, half of each when causal. Which kernel PyTorch's SDPA dispatched
to (flash, memory-efficient, cuDNN or math) is kept in the row's extra."""
from __future__ import annotations

from .case import Case, missing, views

HEAD_DIMS = (64, 128)
# (sequence lengths, tokens per batch, hidden = heads * head_dim), full and quick.
SIZES = {("cpu", False): ((256, 1024, 4096), 4096, 512),
         ("cpu", True): ((128, 256), 256, 128),
         ("cuda", False): ((512, 1024, 2048, 4096, 8192, 16384), 16384, 2048),
         ("cuda", True): ((512, 2048), 16384, 2048)}


def sdpa_backend(device: str, q, k, v, causal: bool) -> str:
    """The kernel PyTorch's SDPA dispatches to for these inputs, e.g. "cuda flash_attention"."""
    import torch

    try:
        choice = torch._fused_sdp_choice(q, k, v, is_causal=causal)
        return f"{device} {torch.nn.attention.SDPBackend(choice).name.lower()}"
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return f"{device} unknown"


def attention_cases(device: str, dtype: str, quick: bool):
    import torch

    import pydl.backend as backend

    B = backend.get(device)
    mine, back = views(device)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    seqs, tokens, hidden = SIZES[(device, quick)]
    unsupported = missing(B, "attention_forward", "attention_backward")
    for d in HEAD_DIMS:
        for n in seqs:
            b, h = max(1, tokens // n), max(1, hidden // d)
            for causal in (False, True):
                fwd_flops = 4.0 * b * h * n * n * d * (0.5 if causal else 1.0)
                shape = f"{b}x{h}x{n}x{d}" + (" causal" if causal else "")
                if unsupported:
                    for op, fl in (("attention_fwd", fwd_flops), ("attention_bwd", 2.5 * fwd_flops)):
                        yield Case(op, dtype, shape, None, None, flops=fl, unsupported=unsupported)
                    continue
                q, k, v, dout = (torch.randn(b, h, n, d, device=device, dtype=getattr(torch, dtype))
                                 for _ in range(4))
                q3, k3, v3, d3 = (mine(t).reshape(b * h, n, d) for t in (q, k, v, dout))
                scale = d ** -0.5

                def fwd(q3=q3, k3=k3, v3=v3, scale=scale, causal=causal):
                    return B.attention_forward(q3, k3, v3, None, scale, causal)

                out, lse = fwd()

                def bwd(q3=q3, k3=k3, v3=v3, out=out, lse=lse, d3=d3, scale=scale, causal=causal):
                    return B.attention_backward(q3, k3, v3, None, out, lse, d3, scale, causal)

                qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
                tout = sdpa(qg, kg, vg, is_causal=causal)

                def torch_fwd(q=q, k=k, v=v, causal=causal):
                    return sdpa(q, k, v, is_causal=causal)

                def torch_bwd(tout=tout, qg=qg, kg=kg, vg=vg, dout=dout):
                    return torch.autograd.grad(tout, (qg, kg, vg), dout, retain_graph=True)

                def fwd_outputs(fwd=fwd, torch_fwd=torch_fwd, q=q):
                    return back(fwd()[0]).reshape(q.shape), torch_fwd()

                def bwd_outputs(bwd=bwd, torch_bwd=torch_bwd):
                    return (torch.cat([back(g).flatten() for g in bwd()]),
                            torch.cat([g.flatten() for g in torch_bwd()]))

                yield Case("attention_fwd", dtype, shape, fwd, torch_fwd, flops=fwd_flops,
                           outputs=fwd_outputs,
                           extra={"torch_kernel": sdpa_backend(device, q, k, v, causal)})
                yield Case("attention_bwd", dtype, shape, bwd, torch_bwd, flops=2.5 * fwd_flops,
                           outputs=bwd_outputs,
                           extra={"torch_kernel": sdpa_backend(device, qg, kg, vg, causal),
                                  "timed": "gradients from the saved forward (torch: autograd.grad "
                                           "on a retained graph)"})
