#!/usr/bin/env python3
"""MAML-RL on 2D navigation in PyTorch: the reference for metaq's `maml_rl` learner.

The algorithm is metaq's (Sources/MetaQEngine/RL/: MAMLRL.swift, Trajectories.swift,
Policy.swift, Navigation2D.swift), step for step:

  environment  a point starts at the origin; each task's goal is uniform in [-0.5, 0.5]^2;
               an action (velocity) is clipped to [-0.1, 0.1] per axis; the reward is minus
               the distance to the goal after the move; an episode ends within 0.01 of the
               goal or after 100 steps. All tasks x episodes are stepped together (torch).
  policy       Gaussian: MLP 2-100-100-2 ReLU gives the mean (PyTorch's default Linear
               initialisation, metaq's fan_in_uniform), a learned state-independent log std
               (starting at 0: std 1). Fast weights carry a leading task axis [T, ...].
  advantages   GAE(gamma 0.99, lambda 1) over rllab's linear feature baseline, fitted per
               task by ridge regression (features [o, o^2, t/100, (t/100)^2, (t/100)^3, 1],
               observations clipped to +-10, regulariser 1e-5 raised tenfold until the
               solution is finite) on the task's own discounted returns; standardised per
               task (population deviation + 1e-8) over the steps where episodes run.
  inner step   one SGD step (lr 0.1) per task on the loaded-DiCE loss
               -sum_t (e^(L_t - stop L_t) - e^(L_{t-1} - stop L_{t-1})) A_t / n_task,
               L_t the running sum of log pi within the episode; second order
               (create_graph) in the meta-gradient.
  outer loop   per meta-iteration: 20 goals; 20 episodes per goal with the current policy,
               one inner step without a graph, 20 episodes per goal with the adapted
               policies; then 5 Adam epochs (lr 0.001) on PPO's clipped objective (clip 0.2)
               over the post-adaptation episodes, the inner step recomputed with a graph
               from the current parameters at every epoch (on the same pre-adaptation
               episodes and advantages); the old log-probabilities are the first epoch's,
               detached. Per-task losses are averaged over each task's valid steps, then
               over tasks.

The style is learn2learn's examples/rl/maml_trpo.py (functional policy, per-task fast
weights, torch.autograd.grad(create_graph=True)); learn2learn is not installable here and
is not used, and the outer loop is PPO as in metaq, not TRPO. Unlike that example (a Python
loop over tasks, one gym environment per worker), everything is batched over the tasks and
episodes as metaq does it: one baddbmm per layer for all tasks.

  --mode speed   seconds per meta-iteration after 2 warm-up iterations (one JSON line)
  --mode train   trains --iters meta-iterations, then evaluates the average return per
                 episode after 0 and 1 adaptation steps on --test-tasks new goals
                 (95% intervals over tasks, 1.96 standard errors) (one JSON line)
"""
import argparse
import json
import math
import os
import sys
import time

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--mode", choices=["speed", "train"], default="speed")
p.add_argument("--iters", type=int, default=None,
               help="timed meta-iterations (speed, default 5) or training meta-iterations (train, default 500)")
p.add_argument("--warmup", type=int, default=2, help="untimed meta-iterations first (speed)")
p.add_argument("--test-tasks", type=int, default=200, help="new goals to evaluate on (train)")
p.add_argument("--eval-steps", default="0,1", help="adaptation steps to evaluate after (train)")
p.add_argument("--log-every", type=int, default=10, help="training log line every N iterations (train, stderr)")
p.add_argument("--meta-batch", type=int, default=20)
p.add_argument("--episodes", type=int, default=20, help="episodes per task for each adaptation step")
p.add_argument("--horizon", type=int, default=100)
p.add_argument("--inner-lr", type=float, default=0.1)
p.add_argument("--outer-lr", type=float, default=0.001)
p.add_argument("--epochs", type=int, default=5, help="PPO Adam steps per meta-iteration")
p.add_argument("--clip", type=float, default=0.2)
p.add_argument("--gamma", type=float, default=0.99)
p.add_argument("--lam", type=float, default=1.0, help="GAE lambda")
p.add_argument("--first-order", action="store_true", help="no graph through the inner step")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=2)
args = p.parse_args()


def pin_threads(n):
    """Before torch is imported: n threads for OpenMP/MKL/OpenBLAS, and the process pinned
    to the first n CPUs it may run on (the same pinning as the shared peer scripts)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:n])
    except (AttributeError, OSError):
        pass


pin_threads(args.threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)
torch.manual_seed(args.seed)

GOAL_LOW, GOAL_HIGH, ACTION_LIMIT, SUCCESS_RADIUS = -0.5, 0.5, 0.1, 0.01
SIZES = (2, 100, 100, 2)


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


# ---- policy ----------------------------------------------------------------------------
def init_policy(gen):
    """[W1, b1, W2, b2, W3, b3, log_std], W as [in, out]; U(-1/sqrt(in), 1/sqrt(in)) for W and b."""
    ps = []
    for i, o in zip(SIZES[:-1], SIZES[1:]):
        bound = 1.0 / i ** 0.5
        ps.append((torch.rand(i, o, generator=gen) * 2 - 1) * bound)
        ps.append((torch.rand(o, generator=gen) * 2 - 1) * bound)
    ps.append(torch.zeros(SIZES[-1]))
    return [q.requires_grad_() for q in ps]


BASE_DIMS = [2, 1, 2, 1, 2, 1, 1]  # ranks of the shared parameters


def per_task(ps, t):
    """Gives shared parameters a leading task axis of extent t (a view); per-task ones are kept."""
    return [q if q.dim() == base + 1 else q.unsqueeze(0).expand(t, *q.shape) for q, base in zip(ps, BASE_DIMS)]


def mean_action(ps, x):
    """Per-task parameters ([T, in, out], [T, out]), observations [T, N, 2] -> means [T, N, 2]."""
    h = F.relu(torch.baddbmm(ps[1].unsqueeze(1), x, ps[0]))
    h = F.relu(torch.baddbmm(ps[3].unsqueeze(1), h, ps[2]))
    return torch.baddbmm(ps[5].unsqueeze(1), h, ps[4])


LOG_2PI = math.log(2 * math.pi)


def log_prob(ps, obs, actions):
    """log pi(a | s) [T, N] under per-task parameters."""
    mean = mean_action(ps, obs)
    log_std = ps[6].unsqueeze(1)  # [T, 1, A]
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std).sum(-1) - 0.5 * actions.shape[-1] * LOG_2PI


# ---- environment and episodes ----------------------------------------------------------
class Episodes:
    """T tasks x E episodes x H steps, episode-major within a task (metaq's layout):
    obs, actions [T, E*H, 2]; rewards, mask [T, E*H]."""

    def __init__(self, obs, actions, rewards, mask, episodes, horizon):
        self.obs, self.actions, self.rewards, self.mask = obs, actions, rewards, mask
        self.tasks, self.episodes, self.horizon = obs.shape[0], episodes, horizon

    def average_returns(self):
        """Undiscounted return per episode, averaged over each task's episodes [T]."""
        return self.rewards.view(self.tasks, self.episodes, self.horizon).sum(-1).mean(-1)


@torch.no_grad()
def rollout(ps, goals, episodes, horizon, gen):
    """All tasks' episodes stepped together with per-task (or shared) parameters `ps`; the
    recorded action is the policy's sample (the environment clips it); a step is recorded
    (mask 1) while its episode runs, including the step that ends it."""
    t = goals.shape[0]
    ps = [q.detach() for q in per_task(ps, t)]
    std = torch.exp(ps[6]).unsqueeze(1)  # [T, 1, 2]
    pos = torch.zeros(t, episodes, 2)
    obs = torch.zeros(t, episodes, horizon, 2)
    acts = torch.zeros(t, episodes, horizon, 2)
    rewards = torch.zeros(t, episodes, horizon)
    mask = torch.zeros(t, episodes, horizon)
    alive = torch.ones(t, episodes, dtype=torch.bool)
    goal = goals.unsqueeze(1)
    for step in range(horizon):
        if not bool(alive.any()):
            break
        a = mean_action(ps, pos) + std * torch.randn(t, episodes, 2, generator=gen)
        live = alive.unsqueeze(-1)
        obs[:, :, step] = torch.where(live, pos, 0.0)
        acts[:, :, step] = torch.where(live, a, 0.0)
        pos = pos + torch.nan_to_num(a.clamp(-ACTION_LIMIT, ACTION_LIMIT), nan=0.0)
        dist = torch.linalg.vector_norm(pos - goal, dim=-1)
        rewards[:, :, step] = torch.where(alive, -dist, 0.0)
        mask[:, :, step] = alive.float()
        alive = alive & (dist >= SUCCESS_RADIUS)
    n = episodes * horizon
    return Episodes(obs.view(t, n, 2), acts.view(t, n, 2), rewards.view(t, n), mask.view(t, n), episodes, horizon)


def discount_matrix(h, factor):
    """G[s, t] = factor^(s - t) for s >= t: x @ G sums factor^(s-t) x_s over s >= t."""
    i = torch.arange(h, dtype=torch.float64)
    d = i.view(h, 1) - i.view(1, h)
    return torch.where(d >= 0, factor ** d.clamp(min=0), 0.0)


def advantages(ep, gamma, lam):
    """GAE over the linear feature baseline fitted per task, standardised per task, [T, E*H]
    (0 where the mask is 0); a constant. Computed in float64, returned as float32."""
    t, e, h = ep.tasks, ep.episodes, ep.horizon
    m = ep.mask.double().view(t * e, h)
    r = ep.rewards.double().view(t * e, h)
    returns = (r * m) @ discount_matrix(h, gamma) * m  # discounted returns-to-go
    # rllab's LinearFeatureBaseline, one ridge regression per task on its own valid steps.
    o = ep.obs.double().clamp(-10, 10)  # [T, E*H, 2]
    a = (torch.arange(e * h, dtype=torch.float64) % h / 100).view(1, e * h, 1).expand(t, e * h, 1)
    x = torch.cat([o, o * o, a, a * a, a * a * a, torch.ones_like(a)], dim=-1)  # [T, N, 8]
    mt = ep.mask.double().unsqueeze(-1)
    xtx = (x * mt).transpose(1, 2) @ x
    xty = ((x * mt).transpose(1, 2) @ returns.view(t, e * h, 1)).squeeze(-1)
    f = x.shape[-1]
    weights = torch.zeros(t, f, dtype=torch.float64)
    todo = torch.ones(t, dtype=torch.bool)
    reg = 1e-5
    for _ in range(6):
        w, info = torch.linalg.solve_ex(xtx + reg * torch.eye(f, dtype=torch.float64), xty)
        ok = todo & (info == 0) & torch.isfinite(w).all(-1)
        weights[ok] = w[ok]
        todo &= ~ok
        if not bool(todo.any()):
            break
        reg *= 10
    baseline = ((x @ weights.unsqueeze(-1)).squeeze(-1) * ep.mask.double()).view(t * e, h)
    next_value = torch.zeros_like(baseline)
    next_value[:, :-1] = baseline[:, 1:] * m[:, 1:]
    delta = (r + gamma * next_value - baseline) * m
    adv = (delta @ discount_matrix(h, gamma * lam) * m).view(t, e * h)
    mk = ep.mask.double()
    count = mk.sum(-1, keepdim=True)
    mean = (adv * mk).sum(-1, keepdim=True) / count.clamp(min=1)
    std = (((adv - mean) ** 2 * mk).sum(-1, keepdim=True) / count.clamp(min=1)).sqrt() + 1e-8
    adv = torch.where(count > 1, mk * (adv - mean) / std, adv)
    return adv.float()


# ---- losses ----------------------------------------------------------------------------
def dice_loss(logp, adv, mask, episodes, horizon):
    """Loaded DiCE, negated, per task [T], averaged over each task's valid steps."""
    t = logp.shape[0]
    masked = (logp * mask).view(t * episodes, horizon)
    cum = masked.cumsum(-1)
    before = cum - masked
    box = torch.exp(cum - cum.detach()) - torch.exp(before - before.detach())
    objective = (box.view(t, -1) * adv * mask).sum(-1)
    return -objective / mask.sum(-1).clamp(min=1)


def ppo_loss(logp, old, adv, mask, clip):
    """PPO's clipped surrogate, negated, per task [T], averaged over each task's valid steps."""
    ratio = torch.exp(logp - old)
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    return -(surrogate * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def adapt(ps, ep, adv, create_graph):
    """One inner SGD step per task on the DiCE loss of episodes `ep`: per-task fast weights.
    Parameters that carry no gradient (detached: sampling, evaluation) are made leaves of
    their own; live ones stay in the graph, and with create_graph the step is differentiable
    (second order), without it the step's gradient is a constant (first order)."""
    fast = [q if q.requires_grad else q.clone().requires_grad_() for q in per_task(ps, ep.tasks)]
    loss = dice_loss(log_prob(fast, ep.obs, ep.actions), adv, ep.mask, ep.episodes, ep.horizon).sum()
    grads = torch.autograd.grad(loss, fast, create_graph=create_graph)
    return [q - args.inner_lr * g for q, g in zip(fast, grads)]


def adapt_detached(ps, ep, adv):
    """The inner step on detached parameters, detached (sampling and evaluation)."""
    return [q.detach() for q in adapt([q.detach() for q in ps], ep, adv, create_graph=False)]


# ---- meta-training ---------------------------------------------------------------------
gen = torch.Generator().manual_seed(args.seed)
params = init_policy(gen)
try:
    opt = torch.optim.Adam(params, lr=args.outer_lr, fused=True)
except (RuntimeError, TypeError):
    opt = torch.optim.Adam(params, lr=args.outer_lr)


def sample_goals(n, g):
    return GOAL_LOW + (GOAL_HIGH - GOAL_LOW) * torch.rand(n, 2, generator=g)


def meta_step(timing=None):
    t0 = time.perf_counter()
    goals = sample_goals(args.meta_batch, gen)
    pre = rollout(params, goals, args.episodes, args.horizon, gen)
    pre_adv = advantages(pre, args.gamma, args.lam)
    fast = adapt_detached(params, pre, pre_adv)
    post = rollout(fast, goals, args.episodes, args.horizon, gen)
    post_adv = advantages(post, args.gamma, args.lam)
    t1 = time.perf_counter()
    old = None
    for _ in range(max(args.epochs, 1)):
        fast = adapt(params, pre, pre_adv, create_graph=not args.first_order)
        logp = log_prob(fast, post.obs, post.actions)
        if old is None:
            old = logp.detach()
        loss = ppo_loss(logp, old, post_adv, post.mask, args.clip).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t2 = time.perf_counter()
    if timing is not None:
        timing[0] += t1 - t0
        timing[1] += t2 - t1
    return float(pre.average_returns().mean()), float(post.average_returns().mean()), float(loss.detach())


def evaluate(tasks, steps, seed, batch=20):
    """Average return per episode of each new task after each number of adaptation steps;
    every step adapts on fresh episodes of the policy adapted so far."""
    g = torch.Generator().manual_seed(seed)
    last = max(steps)
    scores = {s: [] for s in steps}
    done = 0
    while done < tasks:
        n = min(batch, tasks - done)
        goals = sample_goals(n, g)
        ps = [q.detach() for q in params]
        for step in range(last + 1):
            ep = rollout(ps, goals, args.episodes, args.horizon, g)
            if step in scores:
                scores[step] += ep.average_returns().tolist()
            if step < last:
                ps = adapt_detached(ps, ep, advantages(ep, args.gamma, args.lam))
        done += n
    out = {}
    for s, v in scores.items():
        x = torch.tensor(v, dtype=torch.float64)
        out[s] = (float(x.mean()), float(1.96 * x.std(unbiased=True) / len(v) ** 0.5) if len(v) > 1 else 0.0)
    return out


settings = {"meta_batch": args.meta_batch, "episodes": args.episodes, "horizon": args.horizon, "inner_lr": args.inner_lr,
            "outer_lr": args.outer_lr, "epochs": args.epochs, "clip": args.clip, "gamma": args.gamma, "lambda": args.lam,
            "order": 1 if args.first_order else 2, "estimator": "dice", "threads": args.threads, "seed": args.seed,
            "torch": torch.__version__}
log(f"maml_rl_navigation_torch {args.mode} torch {torch.__version__} threads={torch.get_num_threads()} "
    f"affinity={sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}")

if args.mode == "speed":
    n = args.iters or 5
    for _ in range(args.warmup):
        meta_step()
    timing = [0.0, 0.0]
    t0 = time.perf_counter()
    for _ in range(n):
        meta_step(timing)
    dt = time.perf_counter() - t0
    print(json.dumps({"name": "maml_rl_navigation_torch", "mode": "speed", "seconds_per_iteration": round(dt / n, 4),
                      "iterations": n, "warmup": args.warmup, "seconds": round(dt, 3),
                      "sampling_seconds_per_iteration": round(timing[0] / n, 4),
                      "update_seconds_per_iteration": round(timing[1] / n, 4), "settings": settings}), flush=True)
    sys.exit(0)

n = args.iters or 500
before, after = [], []
t0 = time.perf_counter()
for it in range(1, n + 1):
    b, a, loss = meta_step()
    if not (torch.isfinite(torch.tensor(loss)) and all(bool(torch.isfinite(q).all()) for q in params)):
        sys.exit(f"training diverged at iteration {it}")
    before.append(b)
    after.append(a)
    if it % args.log_every == 0 or it == n:
        k = min(args.log_every, len(before))
        log(f"iter {it}: return before {sum(before[-k:]) / k:.2f} after {sum(after[-k:]) / k:.2f} "
            f"(mean of the last {k}), loss {loss:.4f}, {time.perf_counter() - t0:.1f} s")
train_seconds = time.perf_counter() - t0
steps = sorted({int(s) for s in args.eval_steps.split(",")})
t1 = time.perf_counter()
res = evaluate(args.test_tasks, steps, seed=args.seed + 1_000_003)
print(json.dumps({"name": "maml_rl_navigation_torch", "mode": "train", "iterations": n, "test_tasks": args.test_tasks,
                  "steps": steps, "means": [round(res[s][0], 3) for s in steps], "ci95": [round(res[s][1], 3) for s in steps],
                  "train_seconds": round(train_seconds, 2), "seconds_per_iteration": round(train_seconds / n, 4),
                  "eval_seconds": round(time.perf_counter() - t1, 2),
                  "returns_before": [round(x, 3) for x in before], "returns_after": [round(x, 3) for x in after],
                  "std": [round(float(x), 4) for x in torch.exp(params[6].detach())], "settings": settings}), flush=True)
