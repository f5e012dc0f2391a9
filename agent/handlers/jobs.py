"""Training jobs and evaluation on an agent (whole networks, datasets opened on the agent).

- ``start_job`` {job?, network (modules.txt text) | deployment, weights {uuid: tensor},
  dataset, range?, labels?, other?, validation? {dataset, range, ...}, options {flat DIANNE
  learner keys: method, criterion, learningRate, batchSize, ...}, epochs? | iterations?, seed?,
  output?} -> ``job`` {job, state}. Events: ``progress.<job>`` {job, iteration, epoch, loss,
  train_accuracy, val_accuracy, samples_per_s, elapsed_s}; at the end ``job.<job>`` {job,
  state, result, error}.
- ``stop_job`` {job} -> ``job`` (status); ``job_status`` {job} -> ``job`` (status: state,
  progress, result, error, tags).
- ``get_job_weights`` {job, tag?} -> ``parameters`` {modules {uuid: tensor}}.
- ``evaluate`` {network + weights | deployment (all of it on this agent), dataset, range?,
  labels?, other?, batch_size?, output?} -> ``evaluation`` (``Evaluation.to_json()``: accuracy,
  top3, samples, confusion, forward_ms, ...). Runs on a worker thread (at most 4 at once, then
  ``refused``), so the agent keeps serving forwards, pings and heartbeats meanwhile.
"""

from __future__ import annotations

import uuid
from typing import Any

from agent import protocol as P
from agent.handlers import handler
from agent.handlers.core import fragment
from agent.jobs import TrainingJob, open_data
from engine.description import NetworkDescription, parse_network
from engine.errors import DianneError


def _network(agent: Any, msg: P.Message) -> tuple[NetworkDescription, dict[str, Any]]:
    """The description and weights a message names: sent along, or a local deployment's."""
    c = msg.content
    if c.get("deployment") is not None:
        frag = fragment(agent, msg)
        away = [m for m in frag.desc.modules if m not in frag.modules]
        if away:
            raise DianneError(f"deployment {frag.id} is not all on agent {agent.name} "
                              f"({len(away)} modules elsewhere); send the network instead")
        return frag.desc, frag.parameters()
    text = P.need(c, "network", str, msg.type)
    desc = parse_network(text, f"{msg.type} {msg.id}")
    desc.validate()
    weights = c.get("weights") or {}
    if not isinstance(weights, dict):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"{msg.type}: 'weights' must be an object. "
                                               f"Received: {str(weights)[:60]}")
    return desc, {m: P.tensor_ref(msg, r, f"weights of {m}") for m, r in weights.items()}


def _job(agent: Any, msg: P.Message) -> TrainingJob:
    jid = P.need(msg.content, "job", str, msg.type)
    job = agent.jobs.get(jid)
    if job is None:
        raise P.ProtocolError(P.E_BAD_REQUEST, f"agent {agent.name}: no job {jid!r} (jobs: "
                                               f"{', '.join(agent.jobs) or 'none'}). "
                                               f"Received: {jid}")
    return job


@handler("start_job")
def start_job(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    jid = msg.content.get("job") or str(uuid.uuid4())
    if not isinstance(jid, str) or (jid in agent.jobs and agent.jobs[jid].state == "running"):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"start_job: job id must be a new string. "
                                               f"Received: {jid!r}")
    desc, weights = _network(agent, msg)
    job = TrainingJob(jid, desc, weights, msg.content, agent.backend, agent.publish,
                      agent.repository)
    agent.jobs[jid] = job.start()
    return msg.reply("job", {"job": jid, "state": job.state})


@handler("stop_job")
def stop_job(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    job = _job(agent, msg)
    job.stop()
    job.thread.join(timeout=5)
    return msg.reply("job", job.status())


@handler("job_status")
def job_status(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    return msg.reply("job", _job(agent, msg).status())


@handler("get_job_weights")
def get_job_weights(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    job = _job(agent, msg)
    tag = msg.content.get("tag")
    reply = msg.reply("parameters", {"job": job.id, "modules": {}})
    for mid, flat in job.weights(tag if isinstance(tag, str) else None).items():
        reply.content["modules"][mid] = reply.add(flat)
    return reply


@handler("evaluate")
def evaluate(agent: Any, msg: P.Message, sender: bytes) -> None:
    """Checked here; the evaluation runs on a worker thread (the agent keeps serving) and
    replies when done."""
    from engine.evaluation import evaluate_network  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415

    c = msg.content
    desc, weights = _network(agent, msg)
    batch = c.get("batch_size") or 1
    if not isinstance(batch, int) or batch < 1:
        raise DianneError(f"evaluate: batch_size must be a positive integer. Received: {batch}")
    output = c.get("output") if isinstance(c.get("output"), str) else None

    def work() -> P.Message:
        net = Network(desc, backend=agent.backend)
        net.set_weights(weights, source=f"evaluate {msg.id}")
        data = open_data(c.get("dataset"), c.get("range"), c.get("labels"),
                         c.get("other", False))
        result = evaluate_network(net, data, output, batch_size=batch)
        return msg.reply("evaluation", result.to_json())

    agent.run_worker(msg, sender, work)


@handler("step")
def step(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    """``step`` {deployment, options {method, learningRate, momentum, ...}, iteration}: apply
    the accumulated gradients of this agent's modules with ``engine.optim`` (its state, e.g.
    momentum, persists per deployment while the options stay the same) -> ``ok``."""
    import json  # noqa: PLC0415

    from engine.optim import Optimizer  # noqa: PLC0415

    frag = fragment(agent, msg)
    options = P.need(msg.content, "options", dict, "step")
    iteration = msg.content.get("iteration", 0)
    if not isinstance(iteration, int) or iteration < 0:
        raise DianneError(f"step: iteration is a non-negative integer. Received: {iteration!r}")
    key = json.dumps(options, sort_keys=True)
    opt = getattr(frag, "optimizer", None)
    if opt is None or opt[0] != key:
        pairs = [(mod.params[k], g) for mod in frag.modules.values()
                 for k, g in mod.grads.items()]
        opt = frag.optimizer = (key, Optimizer(pairs, options))
    opt[1].step(iteration)
    return msg.reply("ok", {"deployment": frag.id})
