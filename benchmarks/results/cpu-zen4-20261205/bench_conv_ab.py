"""ResNet-18 convolutions at batch 8: pydl's CPU kernels against PyTorch's, called alternately,
median (or with MIN=1 the minimum) of REPS runs after 2 warm-ups, each result checked first.

    python bench_conv_ab.py OPS LAYERS REPS      e.g. fwd,dgrad,wgrad 0,1,2 11
T sets PyTorch's threads (default 2); PYDL_NUM_THREADS pydl's. To time another commit's
kernels, put a checkout with its built module first on PYTHONPATH (and drop an editable
install's import finder, as scripts/sanitize_cpu.sh does)."""
import sys, time, statistics
import numpy as np, torch
from pydl.backend import cpu as B
import os
torch.set_num_threads(int(os.environ.get('T','2')))
L18 = [(3,224,64,7,2,3),(64,56,64,3,1,1),(64,56,128,3,2,1),(64,56,128,1,2,0),(128,28,128,3,1,1),
       (128,28,256,3,2,1),(128,28,256,1,2,0),(256,14,256,3,1,1),(256,14,512,3,2,1),(256,14,512,1,2,0),(512,7,512,3,1,1)]
ops = sys.argv[1].split(",") if len(sys.argv) > 1 else ["fwd","dgrad","wgrad"]
sel = [int(i) for i in sys.argv[2].split(",")] if len(sys.argv) > 2 else range(len(L18))
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 7
def tm(f):
    t=time.perf_counter(); f(); return time.perf_counter()-t
for li in sel:
    c,h,oc,k,s,p = L18[li]; n=8
    oh=(h+2*p-k)//s+1
    g=np.random.default_rng(0)
    x=g.standard_normal((n,c,h,h),dtype=np.float32); w=g.standard_normal((oc,c,k,k),dtype=np.float32)*0.05
    dy=g.standard_normal((n,oc,oh,oh),dtype=np.float32)
    tx,tw,tdy=map(torch.from_numpy,(x,w,dy))
    calls={"fwd":(lambda: B.conv2d_forward(x,w,None,(s,s),(p,p),(1,1),1,(oh,oh)), lambda: torch.nn.functional.conv2d(tx,tw,None,s,p)),
           "dgrad":(lambda: B.conv2d_backward_input(dy,w,x.shape,(s,s),(p,p),(1,1),1), lambda: torch.nn.grad.conv2d_input(tx.shape,tw,tdy,s,p)),
           "wgrad":(lambda: B.conv2d_backward_weight(x,dy,w.shape,(s,s),(p,p),(1,1),1), lambda: torch.nn.grad.conv2d_weight(tx,tw.shape,tdy,s,p))}
    for op in ops:
        a,b=calls[op]
        ra, rb = a(), b().numpy()
        err = np.abs(ra-rb).max()/ (np.abs(rb).max()+1e-30)
        ta,tb=[],[]
        for _ in range(2): a(); b()
        for _ in range(reps): ta.append(tm(a)); tb.append(tm(b))
        ma,mb=(min(ta),min(tb)) if os.environ.get('MIN') else (statistics.median(ta),statistics.median(tb))
        fl = 2*n*oc*oh*oh*c*k*k
        print(f"L{li:2d} {c:3d}x{h:3d}->{oc:3d} k{k}s{s} {op:5s} pydl {ma*1e3:7.3f} ms torch {mb*1e3:7.3f} ms ratio {ma/mb:5.2f}  {fl/ma/1e12:.3f} TF/s err {err:.1e}", flush=True)
