"""The network editor's model, without Qt: the network being edited, its canvas positions, the
edit rules, undo/redo, and the shapes of every module after every edit.

The Build tab is a thin view over :class:`NetworkEditor`: the canvas turns a mouse gesture into
one call here (``add_module``, ``rewire``, ``move``, ``set_properties``, ``delete``, ``paste``,
``auto_layout``, ...), and redraws what the :class:`Change` it is told about names. Tests drive
the same calls. Every call is one undoable step (see :mod:`app.editor.undo`); a call the rules
forbid raises :class:`EditRefused` with a message for the user and changes nothing.

Connection rules (spec section 7): an edge goes from a module's output to another module's
input; a module's output feeds one module unless it is a Fork (category Fork, or a type whose
output is one tensor per successor, like MaxPooling), and its input takes one module unless it
is a Join. An Input has no input and an Output no output. Cycles are refused unless they pass
through an edge into a recurrent module (Memory), which the executor cuts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app.editor import autolayout, clipboard
from app.editor.undo import Position, Transaction, UndoStack, apply_snapshot
from engine.description import ModuleDescription, NetworkDescription, new_module_id
from engine.errors import DianneError, module_label
from engine.layout import Layout
from engine.modules import module_class
from engine.modules.base import INFORMATIONAL
from engine.shapes import NetworkShapes, infer_shapes

log = logging.getLogger(__name__)


class EditRefused(DianneError):
    """An edit the editor's rules forbid; the message says why, for the user."""


@dataclass
class Change:
    """What an edit (or undo/redo) changed: module ids added, removed or altered (their
    description or position), whether the network's name changed, and whether everything was
    replaced (a new network was opened)."""

    modules: set[str] = field(default_factory=set)
    network: bool = False
    reset: bool = False


def _label(md: ModuleDescription) -> str:
    return module_label(None, md.type, md.properties.get("name"))


def many_outputs(type_name: str) -> bool:
    cls = module_class(type_name)
    return cls.category == "Fork" or cls.fork


def many_inputs(type_name: str) -> bool:
    cls = module_class(type_name)
    return cls.category == "Join" or cls.join


def has_input(type_name: str) -> bool:
    return type_name != "Input"


def has_output(type_name: str) -> bool:
    return type_name != "Output"


def _known(type_name: str) -> bool:
    try:
        module_class(type_name)
    except DianneError:
        return False
    return True


class NetworkEditor:
    """The network being edited (``desc``), its positions, undo stack and current shapes."""

    def __init__(self, desc: NetworkDescription | None = None, layout: Layout | None = None,
                 folder: str | Path | None = None) -> None:
        self._listeners: list[Callable[[Change], None]] = []
        self._tx: Transaction | None = None
        self.undo_stack = UndoStack()
        self.replace(desc, layout, folder)

    # ------------------------------------------------------------------ state and queries ---
    def replace(self, desc: NetworkDescription | None, layout: Layout | None = None,
                folder: str | Path | None = None) -> None:
        """Start editing another network (a new undo history; positions from ``layout``)."""
        self.desc = desc if desc is not None else NetworkDescription("untitled", {}, None)
        self.layout = layout if layout is not None else Layout()
        self.folder = Path(folder) if folder is not None else None
        # Every module id this session has seen: layout.txt connections to one of them that is
        # gone are dropped on save, the rest (Learn/Run blocks) are kept (see document.py).
        self.known_ids: set[str] = set(self.desc.modules)
        self.undo_stack.clear()
        self._notify(Change(set(self.desc.modules), network=True, reset=True))

    @property
    def positions(self) -> dict[str, Position]:
        return self.layout.positions

    @property
    def dirty(self) -> bool:
        return not self.undo_stack.is_clean()

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        self._listeners.append(listener)

    def module(self, mid: str) -> ModuleDescription:
        try:
            return self.desc.modules[mid]
        except KeyError:
            raise EditRefused(f"no module {mid} in {self.desc.name}. Received: {mid}") from None

    def edges(self) -> list[tuple[str, str]]:
        """Every connection (source, target), in module order then ``next`` order."""
        mods = self.desc.modules
        return [(m.id, n) for m in mods.values() for n in dict.fromkeys(m.next) if n in mods]

    def display_positions(self) -> dict[str, Position]:
        """Positions of every module: stored ones, auto-placed ones for modules without."""
        missing = [m for m in self.desc.modules if m not in self.positions]
        if not missing:
            return dict(self.positions)
        auto = autolayout.layered_positions(self.desc)
        return {m: self.positions.get(m, auto[m]) for m in self.desc.modules}

    # ------------------------------------------------------------------------------ edits ---
    @contextmanager
    def _edit(self, label: str) -> Iterator[Transaction]:
        if self._tx is not None:  # inside batch(): part of the enclosing step
            yield self._tx
            return
        tx = self._tx = Transaction(self)
        try:
            yield tx
        except BaseException:
            tx.rollback()
            raise
        finally:
            self._tx = None
        edit = tx.finish(label)
        if edit is not None:
            self.undo_stack.push(edit)
            self.known_ids.update(edit.after.modules)
            self._notify(Change(edit.module_ids, network=edit.before.network is not None))

    @contextmanager
    def batch(self, label: str) -> Iterator[None]:
        """Several edits as one undoable step (all or nothing), e.g. dropping a node onto a
        wire: rewire and move."""
        with self._edit(label):
            yield

    def add_module(self, type_name: str, pos: Position = (0, 0),
                   properties: Mapping[str, str] | None = None) -> str:
        """Add a module of a registered type at ``pos``; returns its new UUID."""
        cls = module_class(type_name)
        props = {"name": type_name, "category": cls.category}
        if cls.trainable:
            props["trainable"] = "true"
        mid = new_module_id()
        with self._edit(f"Add {type_name}") as tx:
            tx.put_module(ModuleDescription(mid, type_name, [], [], props))
            tx.set_position(mid, (round(pos[0]), round(pos[1])))
            if properties:
                self._apply_properties(tx, mid, properties)
        return mid

    def delete(self, ids: Iterable[str]) -> None:
        ids = [i for i in dict.fromkeys(ids) if i in self.desc.modules]
        if not ids:
            return
        label = f"Delete {_label(self.desc.modules[ids[0]])}" if len(ids) == 1 else \
            f"Delete {len(ids)} modules"
        with self._edit(label) as tx:
            self._delete(tx, ids)

    def _delete(self, tx: Transaction, ids: list[str]) -> None:
        gone = set(ids)
        for mid in ids:
            md = tx.module(mid)
            for other in set(md.next) | set(md.prev):
                if other in self.desc.modules and other not in gone:
                    om = tx.module(other)
                    om.next = [x for x in om.next if x != mid]
                    om.prev = [x for x in om.prev if x != mid]
            tx.remove_module(mid)
            tx.set_position(mid, None)

    def connect(self, src: str, dst: str) -> None:
        self.rewire([], [(src, dst)])

    def disconnect(self, src: str, dst: str) -> None:
        self.rewire([(src, dst)], [])

    def rewire(self, disconnect: Iterable[tuple[str, str]],
               connect: Iterable[tuple[str, str]]) -> None:
        """Remove then add connections, as one step (what dragging a wire end does)."""
        disconnect, connect = list(disconnect), list(connect)
        label = "Connect" if connect else "Disconnect"
        if len(connect) == 1:
            a, b = (self.module(x) for x in connect[0])
            label = f"Connect {_label(a)} to {_label(b)}"
        with self._edit(label) as tx:
            for src, dst in disconnect:
                self._unlink(tx, src, dst)
            for src, dst in connect:
                self._check_connect(src, dst)
                tx.module(src).next.append(dst)
                tx.module(dst).prev.append(src)
            for src, dst in connect:
                self._fill_linear_input(tx, src, dst)

    def _fill_linear_input(self, tx: Transaction, src: str, dst: str) -> None:
        """A Linear connected with no ``input`` gets the size of what now feeds it (as Neural
        Network Console does), in the same undoable step."""
        md = self.desc.modules[dst]
        if md.type != "Linear" or md.properties.get("input", "").strip() or md.prev != [src]:
            return
        res = infer_shapes(self.desc).modules.get(src)
        shape = res.out_shape if res is not None else None
        if isinstance(shape, list):  # a fork: one tensor per successor, in ``next`` order
            nxt = list(dict.fromkeys(self.desc.modules[src].next))
            shape = shape[nxt.index(dst)] if len(shape) == len(nxt) else None
        if not shape:
            return
        size = 1
        for d in shape:
            size *= d
        if size > 0:
            tx.module(dst).properties["input"] = str(size)

    def _unlink(self, tx: Transaction, src: str, dst: str) -> None:
        a, b = self.module(src), self.module(dst)
        if dst not in a.next and src not in b.prev:
            raise EditRefused(f"{_label(a)} is not connected to {_label(b)}")
        tx.module(src).next = [x for x in a.next if x != dst]
        tx.module(dst).prev = [x for x in b.prev if x != src]

    def _check_connect(self, src: str, dst: str) -> None:
        a, b = self.module(src), self.module(dst)
        la, lb = _label(a), _label(b)
        if src == dst:
            raise EditRefused(f"cannot connect {la} to itself")
        if not has_output(a.type):
            raise EditRefused(f"{la} is an Output: it has no output to connect")
        if not has_input(b.type):
            raise EditRefused(f"{lb} is an Input: nothing can feed it")
        if dst in a.next or src in b.prev:
            raise EditRefused(f"{la} is already connected to {lb}")
        if a.next and _known(a.type) and not many_outputs(a.type):
            raise EditRefused(f"{la} already feeds {_label(self.module(a.next[0]))}; only Fork "
                              f"modules (Duplicate, Split) feed several modules")
        if b.prev and _known(b.type) and not many_inputs(b.type):
            raise EditRefused(f"{lb} already takes its input from "
                              f"{_label(self.module(b.prev[0]))}; only Join modules (Concat, "
                              f"Accumulate, ...) take several inputs")
        if self._reaches(dst, src):
            raise EditRefused(f"connecting {la} to {lb} would make a cycle; a cycle must pass "
                              f"through a Memory module")

    def _recurrent(self, mid: str) -> bool:
        md = self.desc.modules[mid]
        return _known(md.type) and bool(getattr(module_class(md.type), "recurrent", False))

    def _reaches(self, start: str, goal: str) -> bool:
        """Whether ``goal`` is reachable from ``start`` along edges that are not cut (edges into
        a recurrent module are delayed by the executor, so they close no cycle)."""
        if self._recurrent(start):
            return False
        seen, todo = {start}, [start]
        while todo:
            for nxt in self.desc.modules[todo.pop()].next:
                if nxt == goal:
                    return True
                if nxt in self.desc.modules and nxt not in seen and not self._recurrent(nxt):
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    def move(self, positions: Mapping[str, Position], label: str = "Move") -> None:
        """Set canvas positions (rounded to whole pixels, as the original's CSS left/top)."""
        with self._edit(label) as tx:
            for mid, (x, y) in positions.items():
                if mid in self.desc.modules:
                    tx.set_position(mid, (round(x), round(y)))

    def set_properties(self, mid: str, changes: Mapping[str, str | None]) -> None:
        """Set (or, with ``None`` or ``""``, remove) properties of one module; values are
        checked against the registry first (:func:`app.editor.props.normalise`)."""
        md = self.module(mid)
        with self._edit(f"Edit {_label(md)}") as tx:
            self._apply_properties(tx, mid, changes)

    def _apply_properties(self, tx: Transaction, mid: str,
                          changes: Mapping[str, str | None]) -> None:
        from app.editor.props import normalise  # noqa: PLC0415 (props imports this module)

        md = tx.module(mid)
        for key, value in changes.items():
            if key in ("id", "type", "next", "prev"):
                raise EditRefused(f"{_label(md)}: {key!r} is not a property. Received: {key}")
            text = normalise(md.type, key, value)
            if text is None:
                md.properties.pop(key, None)
            else:
                md.properties[key] = text

    def replace_network(self, desc: NetworkDescription, positions: Mapping[str, Position],
                        label: str) -> None:
        """Make ``desc`` (same network name) the edited network, modules in its order, as ONE
        undoable step; ``positions`` are set for its modules, positions of modules no longer
        there are dropped, the others kept (a whole-network rewrite such as grouping)."""
        with self._edit(label) as tx:
            for mid in list(self.desc.modules):
                if mid not in desc.modules:
                    tx.remove_module(mid)
                    tx.set_position(mid, None)
            for mid, md in desc.modules.items():
                if self.desc.modules.get(mid) != md:
                    tx.put_module(ModuleDescription(md.id, md.type, list(md.next),
                                                    list(md.prev), dict(md.properties)))
            self.desc.modules = {mid: self.desc.modules[mid] for mid in desc.modules}
            for mid, (x, y) in positions.items():
                if mid in desc.modules:
                    tx.set_position(mid, (round(x), round(y)))
            if desc.properties != self.desc.properties:
                tx.set_network(self.desc.name, desc.properties)

    def rename(self, name: str) -> None:
        """Change the network's name (``"name"`` of ``modules.txt``)."""
        name = name.strip()
        if not name:
            raise EditRefused("a network needs a name. Received: ''")
        with self._edit(f"Rename network to {name}") as tx:
            tx.set_network(name, self.desc.properties)

    def copy(self, ids: Iterable[str]) -> str:
        """The clipboard text (JSON) of these modules and the connections among them."""
        return clipboard.dumps(self.desc, self.display_positions(), list(ids))

    def paste(self, text: str, offset: Position = (40, 40)) -> list[str]:
        """Add the modules of clipboard ``text`` with new UUIDs; returns the new ids."""
        modules, positions = clipboard.loads(text)
        unknown = sorted({m.type for m in modules if not _known(m.type)})
        if unknown:
            raise EditRefused(f"cannot paste unknown module types. Received: {unknown}")
        new_ids = {m.id: new_module_id() for m in modules}
        with self._edit(f"Paste {len(modules)} module{'s' * (len(modules) != 1)}") as tx:
            for m in modules:
                nid = new_ids[m.id]
                tx.put_module(ModuleDescription(
                    nid, m.type, [new_ids[x] for x in m.next if x in new_ids],
                    [new_ids[x] for x in m.prev if x in new_ids], dict(m.properties)))
                x, y = positions.get(m.id, (0, 0))
                tx.set_position(nid, (round(x + offset[0]), round(y + offset[1])))
        return list(new_ids.values())

    def duplicate(self, ids: Iterable[str]) -> list[str]:
        return self.paste(self.copy(ids))

    def auto_layout(self) -> None:
        """Place every module left to right by topological depth (one undoable step)."""
        self.move(autolayout.layered_positions(self.desc), label="Auto layout")

    # ------------------------------------------------------------------------ undo / redo ---
    def undo(self) -> bool:
        if not self.undo_stack.can_undo():
            return False
        edit = self.undo_stack.step_back()
        apply_snapshot(self, edit.before)
        self._notify(Change(edit.module_ids, network=edit.before.network is not None))
        return True

    def redo(self) -> bool:
        if not self.undo_stack.can_redo():
            return False
        edit = self.undo_stack.step_forward()
        apply_snapshot(self, edit.after)
        self._notify(Change(edit.module_ids, network=edit.after.network is not None))
        return True

    def mark_saved(self, folder: str | Path | None, at: int | None = None) -> None:
        """The state after ``at`` edits (default: now) is what ``folder`` holds."""
        if folder is not None:
            self.folder = Path(folder)
        self.undo_stack.clean_index = self.undo_stack.index if at is None else at
        self._notify(Change(network=True))

    # ---------------------------------------------------------------------------- helpers ---
    @property
    def shapes(self) -> NetworkShapes:
        """Shape inference of the current network (computed on first use after an edit)."""
        if self._shapes is None:
            self._shapes = infer_shapes(self.desc)
        return self._shapes

    def _notify(self, change: Change) -> None:
        self._shapes: NetworkShapes | None = None
        for listener in list(self._listeners):
            listener(change)

    def user_properties(self, mid: str) -> dict[str, str]:
        """Properties other than the informational ones (name, category, trainable)."""
        return {k: v for k, v in self.module(mid).properties.items() if k not in INFORMATIONAL}
