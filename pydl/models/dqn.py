"""DQN family: a Q-network, a replay buffer, an epsilon-greedy schedule and the
(Double-)DQN Huber loss against a target network."""
from __future__ import annotations

import numpy as np

from .. import nn
from .mlp import MLP


class QNetwork(nn.Module):
    """Q(s, .): an MLP from an observation to one value per action."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: tuple = (256, 256)):
        super().__init__()
        self.obs_dim, self.num_actions = obs_dim, num_actions
        self.mlp = MLP(obs_dim, tuple(hidden), num_actions)

    def forward(self, obs):
        return self.mlp(obs)


class ReplayBuffer:
    """A ring buffer of transitions (obs, action, reward, next_obs, terminated) in NumPy."""

    def __init__(self, capacity: int, obs_dim: int):
        if capacity < 1:
            raise ValueError(f"ReplayBuffer: capacity must be >= 1, got {capacity}")
        self.capacity, self.obs_dim = int(capacity), int(obs_dim)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.pos = 0
        self.size = 0

    def __len__(self):
        return self.size

    def add(self, obs, action, reward, next_obs, terminated):
        i = self.pos
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, float(terminated)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator):
        if self.size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty")
        idx = rng.integers(0, self.size, size=batch_size)
        return (self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx],
                self.terminated[idx])

    def state(self) -> dict:
        n = self.size
        return {"obs": self.obs[:n].copy(), "next_obs": self.next_obs[:n].copy(),
                "action": self.action[:n].copy(), "reward": self.reward[:n].copy(),
                "terminated": self.terminated[:n].copy(), "pos": self.pos, "size": n}

    def load(self, state: dict):
        n = int(state["size"])
        for k in ("obs", "next_obs", "action", "reward", "terminated"):
            v = state[k]
            getattr(self, k)[:n] = v.numpy() if hasattr(v, "numpy") else v
        self.pos, self.size = int(state["pos"]), n


def linear_epsilon(step: int, start: float, end: float, decay_steps: int) -> float:
    """Epsilon falling linearly from start to end over decay_steps, then constant."""
    if decay_steps <= 0:
        return end
    return end + (start - end) * max(0.0, 1.0 - step / decay_steps)


def _pick(q, actions_onehot):
    return (q * actions_onehot).sum(dim=1)


def dqn_loss(q_net, target_net, batch, gamma: float, double: bool = True, device: str = "cpu"):
    """Huber loss between Q(s, a) and r + gamma * (1 - terminated) * Q_target(s', a'),
    a' = argmax of the target net (DQN) or of the online net (Double DQN)."""
    import pydl
    import pydl.nn.functional as F

    obs, action, reward, next_obs, terminated = batch
    n_act = q_net.num_actions
    if action.min() < 0 or action.max() >= n_act:
        raise IndexError(f"dqn_loss: action out of range [0, {n_act})")
    eye = np.eye(n_act, dtype=obs.dtype)
    with pydl.no_grad():
        nxt = pydl.tensor(next_obs, device=device)
        q_next = target_net(nxt)
        chooser = q_net(nxt) if double else q_next
        best = chooser.argmax(dim=1).cpu().numpy()
        next_value = _pick(q_next, pydl.tensor(eye[best], device=device))
        target = pydl.tensor(reward, device=device) + gamma * (
            pydl.tensor(1.0 - terminated, device=device) * next_value)
    q = _pick(q_net(pydl.tensor(obs, device=device)), pydl.tensor(eye[action], device=device))
    return F.huber_loss(q, target)
