import Foundation

// The policy-gradient pieces as rows of the primitive table, so that a meta-RL algorithm can
// be written in the language (`rollout` draws the episodes; these score them): the
// log-probability of actions under a Gaussian or categorical policy, and the per-task
// REINFORCE and PPO losses that `maml_rl` itself uses. All are composed of differentiable
// operations, so they may sit inside another `grad` (second-order MAML-RL). The loaded-DiCE
// loss is not a row: its value is 0 whatever the policy, so its gradient (the policy gradient)
// is not the derivative of its value and the table's finite-difference checks do not apply;
// the language has it as a function (`dice_loss`), checked against its closed form.

extension Primitives {
    /// The log-std broadcast against a mean [..., A]: [A] as [1, ..., 1, A]; [T, A] (per-task
    /// fast weights) as [T, 1, ..., 1, A] for a mean [T, ..., A].
    static func broadcastLogStd(_ logStd: Tensor, mean: Tensor, _ op: String) throws(ShapeError) -> Tensor {
        guard mean.rank >= 1, let a = mean.shape.last else { throw ShapeError("\(op): the mean needs an action axis, got \(mean.shape)") }
        if logStd.shape == [a] {
            return logStd.reshaped(to: [Int](repeating: 1, count: mean.rank - 1) + [a])
        }
        if logStd.rank == 2, mean.rank >= 2, logStd.shape == [mean.shape[0], a] {
            return logStd.reshaped(to: [mean.shape[0]] + [Int](repeating: 1, count: mean.rank - 2) + [a])
        }
        throw ShapeError("\(op): log_std must be [\(a)] or [tasks, \(a)] for a mean of shape \(mean.shape), got \(logStd.shape)")
    }

    /// Checks the [T, N] tensors of a per-task policy-gradient loss.
    public static func checkEpisodes(_ op: String, _ named: [(String, Tensor)]) throws(ShapeError) {
        let first = named[0].1
        guard first.rank == 2 else { throw ShapeError("\(op): \(named[0].0) must be [tasks, steps], got \(first.shape)") }
        for (name, t) in named.dropFirst() where t.shape != first.shape {
            throw ShapeError("\(op): \(name) \(t.shape) must have the shape of \(named[0].0) \(first.shape)")
        }
    }

    static let reinforcement: [Primitive] = [
        Primitive(name: "gaussian_log_prob", parameters: [PrimitiveParameter("mean", .tensor), PrimitiveParameter("log_std", .tensor), PrimitiveParameter("actions", .tensor)],
                  summary: "The log-probability log pi(a; s) of actions [..., A] under a diagonal Gaussian policy with a mean [..., A] (the policy network's output) and a log standard deviation [A], or [T, A] per task for a mean [T, ...]; gives [...] (summed over the action axis).",
                  rule: "composed: sum(-(a - mean)^2 / (2 e^(2 log_std)) - log_std - log(2 pi) / 2)", reads: "its parts'", differentiation: .anyOrder, composite: true,
                  example: "gaussian_log_prob(net(tr.observations, p), log_std, tr.actions)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (mean, logStd, actions) = (a[0].tensor!, a[1].tensor!, a[2].tensor!)
                      guard actions.shape == mean.shape else { throw ShapeError("gaussian_log_prob: actions \(actions.shape) and mean \(mean.shape) differ") }
                      let s = try broadcastLogStd(logStd, mean: mean, "gaussian_log_prob")
                      let z = (actions - mean) * (-s).exp()
                      let perDimension = z * z * (-0.5) - s
                      let width = mean.shape.last!
                      return perDimension.sum(axis: mean.rank - 1) - 0.5 * Float(width) * Foundation.log(2 * Float.pi)
                  },
                  sample: { rng in
                      [.tensor(Tensor.uniform([2, 3, 2], low: -1, high: 1, using: &rng)), .tensor(Tensor([-0.3, 0.2])),
                       .tensor(Tensor.uniform([2, 3, 2], low: -1, high: 1, using: &rng))]
                  }),
        Primitive(name: "categorical_log_prob", parameters: [PrimitiveParameter("logits", .tensor), PrimitiveParameter("actions", .labels)],
                  summary: "The log-probability log pi(a; s) of integer actions [...] (or [..., 1], as 'rollout' gives them) under a categorical policy with logits [..., K]; gives [...].",
                  rule: "composed: sum(one_hot(a) * log_softmax(logits))", reads: "its parts'", differentiation: .anyOrder, composite: true,
                  example: "categorical_log_prob(net(tr.observations, p), tr.actions)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (logits, actions) = (a[0].tensor!, a[1].tensor!)
                      guard logits.rank >= 1, let k = logits.shape.last, k > 0 else { throw ShapeError("categorical_log_prob: logits need an action axis, got \(logits.shape)") }
                      let leading = Array(logits.shape.dropLast())
                      guard actions.shape == leading || actions.shape == leading + [1] else {
                          throw ShapeError("categorical_log_prob: actions must be \(leading) or \(leading + [1]) for logits \(logits.shape), got \(actions.shape)")
                      }
                      var oneHot = [Float](repeating: 0, count: logits.count)
                      for (i, x) in actions.scalars.enumerated() {
                          guard x.isFinite, x == x.rounded(), x >= 0, x < Float(k) else {
                              throw ShapeError("categorical_log_prob: actions must be whole numbers in 0..<\(k), got \(x)")
                          }
                          oneHot[i * k + Int(x)] = 1
                      }
                      return (logits.logSoftmax() * Tensor(shape: logits.shape, values: oneHot)).sum(axis: logits.rank - 1)
                  },
                  sample: { rng in [.tensor(Tensor.uniform([2, 3, 4], low: -1, high: 1, using: &rng)), .tensor(Tensor(shape: [2, 3], values: [0, 3, 1, 2, 2, 0]))] }),
        Primitive(name: "pg_loss", parameters: [PrimitiveParameter("logp", .tensor), PrimitiveParameter("advantages", .tensor), PrimitiveParameter("mask", .mask)],
                  summary: "The REINFORCE surrogate of each task, negated: -sum(logp * advantages * mask) / sum(mask) over the steps of log-probabilities, advantages and the episodes' mask, all [T, steps] (as 'rollout' and 'advantages' give them); gives [T]. Its gradient is the policy gradient; differentiated again it omits the episodes' own dependence on the policy (the language's dice_loss includes it).",
                  rule: "composed: -sum(logp * A * m) / n per task", reads: "its parts'", differentiation: .anyOrder, composite: true,
                  example: "mean(pg_loss(logp, adv, tr.mask))", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (logp, adv, mask) = (a[0].tensor!, a[1].tensor!, a[2].tensor!)
                      try checkEpisodes("pg_loss", [("logp", logp), ("advantages", adv), ("mask", mask)])
                      return PolicyGradient.innerLoss(logProbabilities: logp, advantages: adv, mask: mask.detached(), episodes: 1,
                                                      horizon: logp.shape[1], estimator: .reinforce)
                  },
                  sample: { rng in
                      [.tensor(Tensor.uniform([2, 6], low: -1, high: 1, using: &rng)), .tensor(Tensor.uniform([2, 6], low: -1, high: 1, using: &rng)),
                       .tensor(Tensor(shape: [2, 6], values: [1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1]))]
                  }),
        Primitive(name: "ppo_loss", parameters: [PrimitiveParameter("logp", .tensor), PrimitiveParameter("old_logp", .tensor), PrimitiveParameter("advantages", .tensor),
                                                 PrimitiveParameter("mask", .mask), PrimitiveParameter("clip", .number, default: .number(0.2), "0.2")],
                  summary: "PPO's clipped surrogate of each task (Schulman et al. 2017), negated: -sum(min(r A, clip(r, 1 - clip, 1 + clip) A) m) / sum(m) with r = e^(logp - old_logp), all [T, steps]; gives [T]. maml_rl's outer loss.",
                  rule: "composed: exp, maximum and products", reads: "its parts'", differentiation: .anyOrder, composite: true,
                  example: "mean(ppo_loss(logp, stop_gradient(logp0), adv, tr.mask))", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (logp, old, adv, mask) = (a[0].tensor!, a[1].tensor!, a[2].tensor!, a[3].tensor!)
                      guard case let .number(clip) = a[4], clip.isFinite, clip > 0, clip < 10 else { throw ShapeError("ppo_loss: clip must be a number in (0, 10)") }
                      try checkEpisodes("ppo_loss", [("logp", logp), ("old_logp", old), ("advantages", adv), ("mask", mask)])
                      return PolicyGradient.clippedLoss(logProbabilities: logp, oldLogProbabilities: old, advantages: adv, mask: mask.detached(), clip: Float(clip))
                  },
                  sample: { _ in
                      // Ratios well inside or outside 1 +- 0.2 (no kink within a difference step).
                      [.tensor(Tensor([[0.0, 0.5, -0.5, 0.05], [-0.6, 0.1, 0.4, -0.02]])), .tensor(Tensor(shape: [2, 4], values: [0, 0, 0, 0, 0, 0, 0, 0])),
                       .tensor(Tensor([[1, 1, -1, -2], [0.5, -1.5, 2, 1]])), .tensor(Tensor.ones([2, 4])), .number(0.2)]
                  }),
    ]
}
