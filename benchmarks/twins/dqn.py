"""PyTorch twin of the DQN update: the same Q-network and initial weights, the same replay
batches (a buffer filled by a random policy on CartPole-v1), Double-DQN Huber loss
against a target network synced every few updates, Adam.
`python benchmarks/twins/dqn.py` prints the losses."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import copy  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _load import mlp_from, rel  # noqa: E402


def _torch_loss(q, target, batch, gamma, double):
    obs, action, reward, next_obs, term = (torch.from_numpy(a) for a in batch)
    with torch.no_grad():
        q_next = target(next_obs)
        best = (q(next_obs) if double else q_next).argmax(dim=1)
        y = reward + gamma * (1.0 - term) * q_next.gather(1, best[:, None])[:, 0]
    pred = q(obs).gather(1, action[:, None])[:, 0]
    return torch.nn.functional.huber_loss(pred, y)


def filled_buffer(n: int = 2000, seed: int = 0):
    import gymnasium as gym

    from pydl.models.dqn import ReplayBuffer

    env = gym.make("CartPole-v1")
    buf = ReplayBuffer(n, 4)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(n):
        a = int(rng.integers(2))
        nxt, r, term, trunc, _ = env.step(a)
        buf.add(obs, a, r, nxt, term)
        obs = env.reset()[0] if term or trunc else nxt
    return buf


def compare(steps: int = 20, seed: int = 0, double: bool = True, target_every: int = 5):
    import pydl
    from pydl.models.dqn import QNetwork, dqn_loss
    from pydl.recipes.dqn import DEFAULTS as cfg

    pydl.manual_seed(seed)
    buf = filled_buffer(seed=seed)
    q = QNetwork(4, 2, tuple(cfg["hidden"]))
    target = copy.deepcopy(q)
    tq = mlp_from(q.mlp)
    ttarget = copy.deepcopy(tq)
    opt = pydl.optim.Adam(q.parameters(), lr=cfg["lr"])
    topt = torch.optim.Adam(tq.parameters(), lr=cfg["lr"])
    rng = np.random.default_rng(seed + 1)
    out = []
    for step in range(steps):
        batch = buf.sample(cfg["batch_size"], rng)
        loss = dqn_loss(q, target, batch, cfg["gamma"], double)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = _torch_loss(tq, ttarget, batch, cfg["gamma"], double)
        topt.zero_grad()
        tloss.backward()
        topt.step()
        if (step + 1) % target_every == 0:
            target.load_state_dict(q.state_dict())
            ttarget.load_state_dict(tq.state_dict())
        out.append((loss.item(), tloss.item()))
    return out


if __name__ == "__main__":
    for i, (a, b) in enumerate(compare(20)):
        print(f"step {i:3d}  pydl {a:.6f}  torch {b:.6f}  rel {rel(a, b):.2e}")
