"""`pydl train dqn`: Double DQN on gymnasium's CartPole-v1 (no rendering).

An epoch is `steps_per_epoch` environment steps. Training runs in bursts: every `train_every`
environment steps, `gradient_steps` updates on replayed batches, the target network synced every
`target_every` updates, gradients clipped to `max_grad_norm`. After each epoch the greedy policy
plays `select_episodes` episodes; a policy that reaches `stop_at` there plays `confirm_episodes`
more, and training stops once it holds `stop_at` over all of them. Training keeps the greedy policy
that scored best in these evaluations (a confirmed score outranks an unconfirmed one), and the
final figure is its mean return over 100 evaluation episodes on seeds the training never saw.
"""
from __future__ import annotations

import copy

import numpy as np

from ._common import Run

BAR = ("mean_return", 475.0, True)
DEFAULTS = {"epochs": 40, "steps_per_epoch": 1250, "hidden": [256, 256], "lr": 2.3e-3,
            "batch_size": 64, "buffer": 100_000, "learning_starts": 1000, "gamma": 0.99,
            "train_every": 256, "gradient_steps": 128, "target_every": 128, "max_grad_norm": 10.0,
            "eps_start": 1.0, "eps_end": 0.04, "eps_fraction": 0.16, "double": True,
            "eval_episodes": 100, "select_episodes": 10, "confirm_episodes": 40, "stop_at": 500.0,
            "env": "CartPole-v1"}
QUICK = {"epochs": 1, "steps_per_epoch": 1500, "eval_episodes": 5}


def make_env(env_id: str, max_steps: int | None = None):
    """A gymnasium environment the Q-network can drive: a flat Box observation and
    Discrete actions."""
    import gymnasium as gym

    try:
        env = gym.make(env_id, **({"max_episode_steps": max_steps} if max_steps else {}))
    except gym.error.Error as e:
        raise ValueError(f"dqn recipe: cannot make the gymnasium environment {env_id!r} ({e})") from None
    if not isinstance(env.action_space, gym.spaces.Discrete) or \
            not isinstance(env.observation_space, gym.spaces.Box) or \
            len(env.observation_space.shape) != 1:
        env.close()
        raise ValueError(f"dqn recipe: {env_id!r} needs Discrete actions and a flat Box "
                         f"observation, has {env.action_space} and {env.observation_space}")
    return env


def evaluate(q_net, episodes: int, seed: int, device: str = "cpu", max_steps: int | None = 500,
             env_id: str = "CartPole-v1") -> list:
    """Returns of the greedy policy, one episode per seed seed, seed+1, ..."""
    import pydl

    env = make_env(env_id, max_steps)
    returns = []
    q_net.eval()
    with pydl.no_grad():
        for k in range(episodes):
            obs, _ = env.reset(seed=seed + k)
            total, done = 0.0, False
            while not done:
                q = q_net(pydl.tensor(obs[None].astype(np.float32), device=device))
                obs, r, term, trunc, _ = env.step(int(q.argmax(dim=1).item()))
                total += r
                done = term or trunc
            returns.append(total)
    q_net.train()
    env.close()
    return returns


def run(epochs: int | None = None, seed: int = 0, device: str = "cpu", out: str | None = None,
        progress: bool = True, resume: bool = False, steps_per_epoch: int | None = None,
        eval_episodes: int | None = None, stop_after: int | None = None, threads=1,
        **overrides) -> dict:
    """threads: BLAS and OpenMP threads on the CPU (None: the libraries' defaults). DQN's
    outcome hangs on the exact sequence of updates, so it runs on a fixed thread count."""
    from ._common import cpu_threads

    with cpu_threads(threads, device):
        return _run(epochs, seed, device, out, progress, resume, steps_per_epoch, eval_episodes,
                    stop_after, overrides)


def _run(epochs, seed, device, out, progress, resume, steps_per_epoch, eval_episodes, stop_after,
         overrides):
    import pydl
    from pydl.models.dqn import QNetwork, ReplayBuffer, dqn_loss, linear_epsilon

    cfg = dict(DEFAULTS, seed=seed, epochs=epochs or DEFAULTS["epochs"])
    if steps_per_epoch:
        cfg["steps_per_epoch"] = steps_per_epoch
    if eval_episodes:
        cfg["eval_episodes"] = eval_episodes
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"dqn.run: unknown settings {sorted(unknown)}")
    cfg.update(overrides)
    total_steps = cfg["epochs"] * cfg["steps_per_epoch"]
    pydl.manual_seed(seed)
    env = make_env(cfg["env"])
    limit = 500 if cfg["env"] == "CartPole-v1" else None  # else the environment's own limit
    obs_dim, n_act = env.observation_space.shape[0], int(env.action_space.n)
    q_net = QNetwork(obs_dim, n_act, tuple(cfg["hidden"])).to(device)
    target = copy.deepcopy(q_net)
    best = copy.deepcopy(q_net)
    models = pydl.nn.ModuleDict({"q": q_net, "target": target, "best": best})
    opt = pydl.optim.Adam(q_net.parameters(), lr=cfg["lr"])
    buffer = ReplayBuffer(cfg["buffer"], obs_dim)
    rng = np.random.default_rng(seed)
    run_ = Run("dqn", out, progress, total=cfg["epochs"])
    best_score, updates, episode_returns = -np.inf, 0, []
    start = run_.resume(models, opt, None, cfg) if resume else 0
    if start:
        st = run_.recipe_state
        buffer.load(st["buffer"])
        best_score, updates = float(st["best_score"]), int(st["updates"])
        rng = np.random.default_rng([seed, start])  # the environment restarts at an episode start
    obs, _ = env.reset(seed=seed * 100_003 + start)
    ep_return = 0.0
    end = cfg["epochs"] if stop_after is None else min(cfg["epochs"], stop_after)
    decay = int(cfg["eps_fraction"] * total_steps)
    with run_:
        for epoch in range(start, end):
            for t in range(epoch * cfg["steps_per_epoch"], (epoch + 1) * cfg["steps_per_epoch"]):
                if rng.random() < linear_epsilon(t, cfg["eps_start"], cfg["eps_end"], decay):
                    action = int(rng.integers(n_act))
                else:
                    with pydl.no_grad():
                        q = q_net(pydl.tensor(obs[None].astype(np.float32), device=device))
                    action = int(q.argmax(dim=1).item())
                nxt, r, term, trunc, _ = env.step(action)
                buffer.add(obs, action, r, nxt, term)
                obs, ep_return = nxt, ep_return + r
                if term or trunc:
                    episode_returns.append(ep_return)
                    obs, _ = env.reset()
                    ep_return = 0.0
                if t + 1 >= cfg["learning_starts"] and (t + 1) % cfg["train_every"] == 0:
                    for _ in range(cfg["gradient_steps"]):
                        loss = dqn_loss(q_net, target, buffer.sample(cfg["batch_size"], rng),
                                        cfg["gamma"], cfg["double"], device)
                        opt.zero_grad()
                        loss.backward()
                        if cfg["max_grad_norm"]:
                            pydl.nn.utils.clip_grad_norm_(q_net.parameters(), cfg["max_grad_norm"])
                        opt.step()
                        updates += 1
                        if updates % cfg["target_every"] == 0:
                            target.load_state_dict(q_net.state_dict())
                        run_.log_loss(loss.item(), every=32)
            returns = evaluate(q_net, cfg["select_episodes"], 10_000 + 1000 * epoch, device, limit,
                               cfg["env"])
            score = float(np.mean(returns))
            confirmed = False
            if score >= cfg["stop_at"] and cfg["confirm_episodes"]:
                returns += evaluate(q_net, cfg["confirm_episodes"],
                                    10_000 + 1000 * epoch + cfg["select_episodes"], device, limit,
                                    cfg["env"])
                score, confirmed = float(np.mean(returns)), True
            rank = score + (1e9 if confirmed else 0.0)  # a confirmed score outranks any other
            if rank >= best_score:
                best_score = rank
                best.load_state_dict(q_net.state_dict())
            recent = float(np.mean(episode_returns[-20:])) if episode_returns else 0.0
            run_.end_epoch(epoch + 1, model=models, optimizer=opt, config=cfg,
                           extra={"buffer": buffer.state(), "best_score": best_score, "updates": updates},
                           greedy_return=score, train_return=recent)
            if score >= cfg["stop_at"]:  # solved on the selection episodes: stop early
                end = epoch + 1
                break
    env.close()
    returns = evaluate(best, cfg["eval_episodes"], 1_000_000 + seed, device, limit, cfg["env"])
    return run_.finish({"device": device, "epochs": end, "steps": end * cfg["steps_per_epoch"],
                        "mean_return": float(np.mean(returns)), "min_return": float(np.min(returns)),
                        "updates": updates, "config": cfg})
