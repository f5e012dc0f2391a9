"""The headless DIANNE agent: hosts modules of deployed networks and passes tensors over ZeroMQ.

Imports ``engine`` and its own modules only; never ``app``, never Qt.

Client API (:mod:`agent.client`)::

    from agent.client import AgentClient, AgentError, deploy, discover

    agents = discover(interface="127.0.0.1", timeout=2.0)   # [AgentInfo]: id, name, address,
                                                            # events, backends, gpu, cores, ...
    with AgentClient(agents[0].address) as a:               # one agent
        a.hello()                                           # its info dict (deployments, ...)
    dep = deploy(desc, weights, {"<uuid>": "<agent id or name>", ...}, agents)
    y = dep.forward(x)                   # same as engine.graph.Network(desc).forward(x)
    ys = list(dep.forward_many(xs, window=8))   # pipelined, in order, none lost
    dep.backward(grad_y)                 # Input id -> gradient; parameter grads accumulate
    dep.get_weights(grads=True); dep.set_weights(w); dep.zero_grad(); dep.train()
    dep.move("<module>", "<agent>")      # move one module: its parameters and state go along
    dep.set_fallback(spare)              # or deploy(..., fallback=spare): a dead agent's modules
                                         # go there with the kept weights, in-flight samples are
                                         # sent again (dep.failovers records each failover)
    dep.undeploy()

Every failure raises :class:`agent.client.AgentError` (a ``DianneError``) naming the agent and,
for a module failure, the module; an agent that stops its heartbeat is reported within 2 s.

Adding a message type: a module in ``agent/handlers/`` with ``@handler("type")`` functions
(see :mod:`agent.handlers`); the wire format is :mod:`agent.protocol`.
"""
