"""Core message types: hello/info, ping, deploy, undeploy, forward, tensor, backward, parameters.

Content keys (tensors are referred to by index into the message's tensor list):

- ``hello`` / ``info`` -> ``info``: the agent's identity, backends, cores, memory, deployments.
- ``ping`` -> ``pong``.
- ``deploy`` {deployment, network (modules.txt text), placement {uuid: agent id}, agents
  {agent id: address}, weights {uuid: tensor}, token?} -> ``deployed`` {deployment, modules}.
  Deploying an existing id again re-places it (only from the deploying session or with the
  token); modules that stay keep their parameters. ``token`` (a secret the client draws) is what
  ``forward``/``backward`` from another session and every ``tensor`` must carry; an agent holds
  at most ``max_deployments`` deployments (``refused`` beyond).
- ``undeploy`` {deployment | name} -> ``undeployed`` {deployments}.
- ``forward`` {deployment, sample, outputs [uuid] | null, feeds {input uuid: tensor}}: no direct
  reply; every requested Output sends ``result`` {deployment, sample, kind "forward", module,
  tensor} to the client, from whichever agent holds it; a failure sends ``error`` {code,
  message, deployment, sample}. It also starts the sample on the agent (feeds may be empty):
  the Memory modules there emit their state; each Memory the sample needs sends ``result``
  {kind "state", module, tensor null} once it holds its new state.
- ``tensor`` (agent to agent) {deployment, sample, dir "forward"|"backward"|"state", from, to,
  outputs, client, token, tensor (absent: no gradient)}: refused (``refused`` error, logged)
  without the deployment's token, so no client can redirect a deployment's results. ``state``:
  the value of a Memory's predecessor, the Memory's state for the next sample.
- ``backward`` {deployment, sample, grads {output uuid: tensor | null}}: every Input of the last
  forward's plan sends ``result`` {kind "backward", module, tensor | null}.
- ``get_parameters`` {deployment, modules?, grads?} -> ``parameters`` {modules {uuid: tensor}}.
- ``set_parameters`` {deployment, weights {uuid: tensor}} -> ``ok``.
- ``zero_grad``, ``mode`` {train: bool} -> ``ok``.
- ``reset_state`` {deployment, token?} -> ``ok`` {modules}: the local Memory modules (and
  recurrent composites) start a new sequence (zero state); from the deploying session or with
  the token.
- ``get_state`` {deployment, modules?, before? [sample], token?} -> ``state`` {deployment,
  modules {uuid: [tensor | null]}}: the state of each local module (of ``modules``) that holds
  one (a Memory: one tensor; a recurrent composite: one per inner Memory; null: none yet,
  zeros); for a module last updated by a sample in ``before`` (lost in a failover, to be sent
  again), the state it held before. ``set_state`` {deployment, modules {uuid: [tensor |
  null]}, token?} -> ``ok`` {modules}: sets them (what a move carries, :mod:`agent.state_carry`).
  Both from the deploying session or with the token.
"""

from __future__ import annotations

import logging
from typing import Any

from agent import protocol as P
from agent.handlers import handler
from agent.host import Fragment
from agent.state_carry import decode, encode
from engine.description import parse_network
from engine.errors import DianneError, ModuleError

log = logging.getLogger(__name__)


@handler("hello", "info")
def hello(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    return msg.reply("info", agent.info())


@handler("ping")
def ping(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    return msg.reply("pong", {"id": agent.id})


def fragment(agent: Any, msg: P.Message) -> Fragment:
    dep = P.need(msg.content, "deployment", str, msg.type)
    frag = agent.deployments.get(dep)
    if frag is None:
        known = ", ".join(agent.deployments) or "none"
        raise P.ProtocolError(P.E_BAD_REQUEST, f"agent {agent.name}: no deployment {dep!r} "
                                               f"here (deployed: {known}). Received: {dep}")
    return frag


@handler("deploy")
def deploy(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    c = msg.content
    dep = P.need(c, "deployment", str, "deploy")
    text = P.need(c, "network", str, "deploy")
    placement = P.need(c, "placement", dict, "deploy")
    agents = P.need(c, "agents", dict, "deploy")
    weights = c.get("weights") or {}
    if not isinstance(weights, dict):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"deploy: 'weights' must be an object. "
                                               f"Received: {str(weights)[:60]}")
    for key, value in (*placement.items(), *agents.items()):
        if not isinstance(value, str):
            raise P.ProtocolError(P.E_BAD_REQUEST, f"deploy: placement and agents map ids to "
                                                   f"strings. Received: {key}: {value!r}"[:200])
    token = c.get("token")
    if token is not None and not isinstance(token, str):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"deploy: 'token' is a string. "
                                               f"Received: {str(token)[:60]}")
    previous = agent.deployments.get(dep)
    if previous is not None and not _allowed(previous, sender, token):
        _refuse(agent, "deploy", dep, sender)
    if previous is None and len(agent.deployments) >= agent.max_deployments:
        raise P.ProtocolError(P.E_REFUSED, f"agent {agent.name} holds {agent.max_deployments} "
                                           f"deployments, its limit (--max-deployments); "
                                           f"undeploy one first. Received: deployment {dep}")
    desc = parse_network(text, f"deployment {dep}")
    desc.validate()
    frag = Fragment(dep, desc, dict(placement), agent.id, agent.backend, previous=previous)
    frag.owner, frag.token = sender, token
    for mid, ref in weights.items():
        frag.local_module(mid).set_flat(P.tensor_ref(msg, ref, f"deploy: weights of {mid}"))
    frag.train(False)
    agent.addresses.update(agents)
    _wire(agent, frag)
    agent.deployments[dep] = frag
    return msg.reply("deployed", {"deployment": dep, "modules": sorted(frag.modules)})


def _allowed(frag: Fragment, sender: bytes, token: Any) -> bool:
    """Whether a message may drive ``frag``: it comes from the session that deployed it, or
    carries the deployment's token (peers of the deployment and its client know it)."""
    return sender == frag.owner or (frag.token is not None and token == frag.token)


def _refuse(agent: Any, what: str, dep: str, sender: bytes) -> None:
    log.warning("agent %s: refused a %s for deployment %s from %s: not its client or a peer "
                "(no matching token)", agent.name, what, dep, sender.hex()[:32])
    raise P.ProtocolError(P.E_REFUSED, f"agent {agent.name}: {what} for deployment {dep} "
                                       f"refused: only its client and its peer agents (which "
                                       f"hold its token) may send it. Received: {what}")


def _driven(agent: Any, msg: P.Message, sender: bytes) -> Fragment:
    """The fragment ``msg`` names, when its sender may drive it (else refused, logged)."""
    frag = fragment(agent, msg)
    if not _allowed(frag, sender, msg.content.get("token")):
        _refuse(agent, msg.type, frag.id, sender)
    return frag


def _wire(agent: Any, frag: Fragment) -> None:
    """Give the fragment its two ways out: tensors to peer agents, results to the client."""
    frag.client = frag.owner

    def send(peer: str, kind: str, sample: str, src: str, dst: str,
             outputs: list[str] | None, tensor: Any) -> None:
        out = P.Message("tensor", {"deployment": frag.id, "sample": sample, "dir": kind,
                                   "from": src, "to": dst, "outputs": outputs,
                                   "client": frag.client.hex(), "token": frag.token})
        if tensor is not None:
            out.tensors.append(private(tensor))
        agent.send_agent(peer, out)

    def report(kind: str, sample: str, mid: str, tensor: Any) -> None:
        out = P.Message("result", {"deployment": frag.id, "sample": sample, "kind": kind,
                                   "module": mid, "tensor": None if tensor is None else 0})
        if tensor is not None:
            out.tensors.append(private(tensor))
        agent.reply(frag.client, out)

    frag.send, frag.report = send, report


def private(array: Any) -> Any:
    """An array safe to send without copying: a module may overwrite its (writeable) output
    buffer with the next sample while ZeroMQ still sends it, so that is copied; a read-only
    array (a received frame passed through, as by Input/Output) cannot change and travels
    zero-copy."""
    return array.copy() if array.flags.writeable else array


def sample_error(agent: Any, frag: Fragment, sample: str, exc: Exception,
                 parent: str | None = None) -> P.Message:
    code = P.E_MODULE if isinstance(exc, ModuleError) else \
        getattr(exc, "code", P.E_BAD_REQUEST)
    return P.Message("error", {"code": code, "message": f"agent {agent.name}: {exc}",
                               "deployment": frag.id, "sample": sample}, parent=parent)


@handler("undeploy")
def undeploy(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    dep, name = msg.content.get("deployment"), msg.content.get("name")
    gone = [d for d, f in agent.deployments.items() if d == dep or (name and f.desc.name == name)]
    for d in gone:
        del agent.deployments[d]
    return msg.reply("undeployed", {"deployments": gone})


def _sample_request(agent: Any, msg: P.Message, sender: bytes, kind: str,
                    field: str) -> tuple[Any, str, dict]:
    """A client's forward/backward: its fragment (the sender allowed, and made the fragment's
    client), the sample id and the tensors by module id under ``field``."""
    frag = fragment(agent, msg)
    sample = P.need(msg.content, "sample", str, kind)
    tensors = P.need(msg.content, field, dict, kind)
    if not _allowed(frag, sender, msg.content.get("token")):
        _refuse(agent, kind, frag.id, sender)
    frag.client = sender
    return frag, sample, tensors


@handler("forward")
def forward(agent: Any, msg: P.Message, sender: bytes) -> P.Message | None:
    frag, sample, feeds = _sample_request(agent, msg, sender, "forward", "feeds")
    try:
        outputs = frag.outputs_of(msg.content.get("outputs"))
        frag.start(sample, outputs)
        for mid, ref in feeds.items():
            frag.feed(sample, outputs, None, mid, P.tensor_ref(msg, ref, f"feed of {mid}"))
    except DianneError as exc:
        return sample_error(agent, frag, sample, exc, msg.id)
    return None


@handler("tensor")
def tensor(agent: Any, msg: P.Message, sender: bytes) -> None:
    frag = fragment(agent, msg)
    c = msg.content
    sample = P.need(c, "sample", str, "tensor")
    client = P.need(c, "client", str, "tensor")
    if frag.token is None or c.get("token") != frag.token:
        # Only a peer of the deployment knows its token; anyone else could otherwise send
        # the deployment's results (from here on) to an address of its choosing.
        _refuse(agent, "tensor", frag.id, sender)
    try:
        frag.client = bytes.fromhex(client)
        src, dst = P.need(c, "from", str, "tensor"), P.need(c, "to", str, "tensor")
        value = P.tensor_ref(msg, 0, f"tensor {src}->{dst}") if msg.tensors else None
        kind = c.get("dir")
        if kind == "backward":
            frag.grad(sample, src, dst, value)
        else:
            if value is None:
                raise DianneError(f"{kind} tensor {src}->{dst} carries no tensor")
            frag.feed(sample, frag.outputs_of(c.get("outputs")), src, dst, value,
                      state=kind == "state")
    except (DianneError, ValueError) as exc:
        if frag.client:
            agent.reply(frag.client, sample_error(agent, frag, sample, exc))
    return None


@handler("backward")
def backward(agent: Any, msg: P.Message, sender: bytes) -> P.Message | None:
    frag, sample, grads = _sample_request(agent, msg, sender, "backward", "grads")
    try:
        for mid, ref in grads.items():
            g = None if ref is None else P.tensor_ref(msg, ref, f"gradient of {mid}")
            frag.grad(sample, None, mid, g)
    except DianneError as exc:
        return sample_error(agent, frag, sample, exc, msg.id)
    return None


@handler("get_parameters")
def get_parameters(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    frag = fragment(agent, msg)
    which = msg.content.get("modules")
    if which is not None and not (isinstance(which, list) and
                                  all(isinstance(m, str) for m in which)):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"get_parameters: 'modules' is a list of ids. "
                                               f"Received: {str(which)[:60]}")
    params = frag.parameters(which, grads=bool(msg.content.get("grads")))
    reply = msg.reply("parameters", {"deployment": frag.id, "modules": {}})
    for mid, flat in params.items():
        reply.content["modules"][mid] = reply.add(flat)
    return reply


@handler("set_parameters")
def set_parameters(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    frag = fragment(agent, msg)
    weights = P.need(msg.content, "weights", dict, "set_parameters")
    for mid, ref in weights.items():
        frag.local_module(mid).set_flat(P.tensor_ref(msg, ref, f"weights of {mid}"))
    return msg.reply("ok", {"deployment": frag.id, "modules": sorted(weights)})


@handler("zero_grad")
def zero_grad(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    frag = fragment(agent, msg)
    frag.zero_grad()
    return msg.reply("ok", {"deployment": frag.id})


@handler("reset_state")
def reset_state(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    frag = _driven(agent, msg, sender)
    return msg.reply("ok", {"deployment": frag.id, "modules": frag.reset_state()})


def _ids(value: Any, key: str, what: str) -> list[str] | None:
    if value is not None and not (isinstance(value, list) and
                                  all(isinstance(m, str) for m in value)):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"{what}: '{key}' is a list of ids. "
                                               f"Received: {str(value)[:60]}")
    return value


@handler("get_state")
def get_state(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    frag = _driven(agent, msg, sender)
    which = _ids(msg.content.get("modules"), "modules", "get_state")
    before = _ids(msg.content.get("before"), "before", "get_state") or []
    reply = msg.reply("state", {"deployment": frag.id})
    reply.content["modules"] = encode(reply, frag.states(which, before))
    return reply


@handler("set_state")
def set_state(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    frag = _driven(agent, msg, sender)
    states = decode(msg, msg.content.get("modules"), "set_state")
    frag.set_states(states)
    return msg.reply("ok", {"deployment": frag.id, "modules": sorted(states)})


@handler("mode")
def mode(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    frag = fragment(agent, msg)
    frag.train(bool(P.need(msg.content, "train", bool, "mode")))
    return msg.reply("ok", {"deployment": frag.id})
