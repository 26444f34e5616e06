"""Offline synthesis: run the real stack program under the Pulumi SDK's mock monitor and record what it registers.

A region is its platform stack and one stack per tenant (``sovcloud.stacks``): ``run`` runs the program once per
stack, in turn, resetting the SDK's global state between them; a tenant stack's StackReference to the platform is
answered with the platform's ``tenantContext`` as the platform stack would export it once applied (Kueue deployed).
Nothing here talks to a cluster or to the Pulumi engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sovcloud import config as config_loader
from sovcloud.config.model import Config
from sovcloud.stacks import LAYOUT_KEY, received

PROGRAM = Path(config_loader.STACKS_DIR) / "__main__.py"
MANAGEMENT_GROUPS = ("cluster.x-k8s.io/", "bootstrap.cluster.x-k8s.io/", "infrastructure.cluster.x-k8s.io/")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER_SCOPED = {"Namespace", "Node", "ResourceFlavor", "Cohort", "ClusterQueue", "WorkloadPriorityClass",
                  "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass", "Topology"}


@dataclass(frozen=True)
class Record:
    """One resource the program registered: type token, logical name, parent, options the engine would see."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    retain_on_delete: bool
    protect: bool
    inputs: dict[str, Any] = field(hash=False)
    dependencies: tuple[str, ...] = ()  # URNs the engine orders it after (depends_on and input dependencies)


@dataclass
class Synthesis:
    region: str
    records: list[Record]
    as_of: dt.date = field(default_factory=dt.date.today)
    rendered: list[Any] = field(default_factory=list)  # sovcloud.render.Rendered, one per release rendered
    not_rendered: list[str] = field(default_factory=list)  # why a release was not rendered, one line each
    stack: str = ""  # the stack these records are of; "" for a region's stacks together (``parts``)
    parts: list[Synthesis] = field(default_factory=list)  # per stack, platform first, when several were run
    result: Any = None  # what ``run``'s ``each`` made of this stack, in the process that synthesised it
    tally: dict[str, int] | None = None  # counts() of a tenant stack whose records ``run`` dropped (keep_records)

    def stacks(self) -> list[Synthesis]:
        """Each stack's synthesis: the parts of a region, or this one stack."""
        return self.parts or [self]

    def kubernetes_objects(self) -> list[Record]:
        return [r for r in self.records if r.custom and r.type.startswith("kubernetes:") and r.type != HELM_RELEASE]

    def helm_releases(self) -> list[Record]:
        return [r for r in self.records if r.type == HELM_RELEASE]

    def counts(self) -> dict[str, int]:
        """Custom resources by type; a region's parts summed (also those whose records were dropped)."""
        if self.parts:
            total: Counter[str] = Counter()
            for part in self.parts:
                total.update(part.counts())
            return dict(sorted(total.items()))
        if self.tally is not None:
            return self.tally
        return dict(sorted(Counter(r.type for r in self.records if r.custom).items()))


def plain(value: Any) -> Any:
    """Inputs as plain, sorted data: the mock monitor's protobuf round trip turns every number into a float."""
    return received(value, sort_keys=True)


def _monitor_class() -> type:
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.proto import resource_pb2

    class RecordingMonitor(MockMonitor):
        """The SDK's mock monitor, keeping each registration with the parent and options it arrived with."""

        def __init__(self, mocks: Any, reads: dict[Any, Any] | None = None):
            super().__init__(mocks)
            self.records: list[Record] = []
            self.reads = reads if reads is not None else {}

        def ReadResource(self, request: Any) -> Any:
            """MockMonitor.ReadResource, its answer's properties kept for the series: every tenant stack of a region
            reads the same platform output (a few kilobytes of region, serialized again for each stack before)."""
            from pulumi.runtime import rpc
            from pulumi.runtime.mocks import MockResourceArgs
            from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

            key = (request.type, request.name, request.id, request.properties.SerializeToString(deterministic=True))
            if key not in self.reads:
                _ensure_event_loop()  # as the SDK's version: deserializing a resource reference needs one
                id_, state = self.mocks.new_resource(MockResourceArgs(
                    typ=request.type, name=request.name, inputs=rpc.deserialize_properties(request.properties),
                    provider=request.provider, resource_id=request.id))
                self.reads[key] = (id_, state, _sync_await(rpc.serialize_properties(state, {})))
            id_, state, props = self.reads[key]
            urn = self.make_urn(request.parent, request.type, request.name)
            self.resources[urn] = MockMonitor.ResourceRegistration(urn, id_, state)
            return resource_pb2.ReadResourceResponse(urn=urn, properties=props)

        def make_urn(self, parent: str, type_: str, name: str) -> str:
            """The engine's URN: the whole parent type chain, with the root stack left out (the SDK's mock keeps
            only the immediate parent's type and puts ``pulumi:pulumi:Stack$`` on top-level resources)."""
            from pulumi.runtime.settings import get_project, get_stack

            if parent:
                qualified = parent.split("::")[2]
                if qualified != "pulumi:pulumi:Stack":
                    type_ = f"{qualified}${type_}"
            return "urn:pulumi:" + "::".join([get_stack(), get_project(), type_, name])

        def RegisterResource(self, request: Any) -> Any:
            """MockMonitor.RegisterResource, with the inputs deserialized once and the state sent back as it came.

            The SDK's version deserializes the inputs, asks ``mocks.new_resource`` for the state and serializes that
            state again on an event loop of the monitor's thread; the recorder then deserialized the inputs a second
            time. Synthesis's mocks answer state = inputs, so the request's own serialized inputs are the response.
            """
            from pulumi.runtime import rpc
            from pulumi.runtime.mocks import MockResourceArgs
            from pulumi.runtime.sync_await import _ensure_event_loop

            urn = self.make_urn(request.parent, request.type, request.name)
            if request.type == "pulumi:pulumi:Stack":
                return resource_pb2.RegisterResourceResponse(urn=urn)
            _ensure_event_loop()  # as the SDK's version: deserializing a resource reference needs one on this thread
            inputs = rpc.deserialize_properties(request.object)
            id_, state = self.mocks.new_resource(MockResourceArgs(
                typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
                resource_id=request.importId, custom=request.custom or False))
            if state is not inputs:
                raise RuntimeError("synthesis mocks must answer the inputs as the state")
            self.resources[urn] = MockMonitor.ResourceRegistration(urn, id_, state)
            self.records.append(Record(
                urn=urn, type=request.type, name=request.name, parent=request.parent, custom=bool(request.custom),
                provider=request.provider, retain_on_delete=bool(request.retainOnDelete),
                protect=bool(request.protect), inputs=plain(inputs),
                dependencies=tuple(sorted(request.dependencies))))
            return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=request.object)

    return RecordingMonitor


def run(root: Path, region: str, cfg: Config, stack_config: dict[str, str] | None = None,
        as_of: dt.date | None = None, policy_gate: bool = False, tenants: list[str] | None = None,
        platform: bool = True, workers: int = 1, each: Callable[[Synthesis], Any] | None = None,
        keep_records: bool = True) -> Synthesis:
    """Synthesise ``region``: its platform stack (unless ``platform`` is False) and its tenant stacks (``tenants``,
    default all with an allocation there); the records of all of them, each stack's in ``parts``. With ``workers``
    above 1, the tenant stacks are shared out to that many forked worker processes, each running its share of
    the stack programs in turn (the SDK's state is global to a process); the platform runs here first.

    ``each(part)`` runs on every stack's synthesis right after it, in the process that made it (a worker's share
    of judging or writing), its return value kept as ``part.result``; it sees the platform first where the
    platform is run. ``keep_records=False``: tenant stacks come back without their records but their Helm releases
    (``counts()`` still holds), so only what ``each`` made of them crosses back from a worker; the platform's are
    kept."""
    from sovcloud import stacks

    names = ([stacks.platform(region)] if platform else []) + \
        [stacks.tenant(region, t) for t in (stacks.tenants_in(cfg, region) if tenants is None else tenants)]
    tenant_names = [n for n in names if stacks.parse(n)[1] is not None]
    if workers > 1 and len(tenant_names) >= 4 * workers and can_fork():
        # the platform and the first tenant stack here: the workers inherit what the first run of each imported
        # and compiled (pulumi_kubernetes loads a kind's module on first use: tens of milliseconds in every worker)
        split = len(names) - len(tenant_names) + 1
        head = _run_series(root, region, cfg, names[:split], stack_config, as_of, policy_gate, each, keep_records)
        parts = head + _run_forked(root, region, cfg, names[split:], stack_config, as_of, policy_gate, workers, each,
                                   keep_records)
    else:
        parts = _run_series(root, region, cfg, names, stack_config, as_of, policy_gate, each, keep_records)
    if len(parts) == 1:
        return parts[0]
    return Synthesis(region, [r for p in parts for r in p.records], parts[0].as_of if parts else
                     (as_of or dt.date.today()), parts=parts)


@dataclass
class _Series:
    """What the stacks of a series share: the event loop, the platform's stack config (and its region object), the
    compiled program, the platform output a tenant stack reads, and the monitor's answers to those reads."""

    loop: asyncio.AbstractEventLoop
    platform_config: dict[str, str]
    code: Any  # the compiled stack program
    reads: dict[Any, Any] = field(default_factory=dict)  # the read's type, name, id, properties -> answer
    _context: Any = None
    _region_object: Any = None

    @property
    def region_object(self) -> Any:
        if self._region_object is None:
            self._region_object = json.loads(self.platform_config[config_loader.REGION_KEY])
        return self._region_object

    def context(self, cfg: Config, region: str) -> Any:
        from components.region import tenant_context

        if self._context is None and region in cfg.regions:
            self._context = tenant_context(cfg.regions[region], self.region_object, "deployed")
        return self._context


@contextlib.contextmanager
def _without_stack_traces() -> Any:
    """The SDK walks the Python stack (``traceback.extract_stack``) for every resource, to send the engine the
    source position and call stack it shows in diagnostics; the mock monitor keeps neither, and the walk was a tenth
    of a tenant stack's synthesis. While synthesis runs, that step answers an empty trace; afterwards it is back."""
    from pulumi.runtime import resource
    from pulumi.runtime.proto import source_pb2

    original = getattr(resource, "_get_stack_trace", None)
    if original is None:  # an SDK without it: nothing to spare
        yield
        return
    resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        resource._get_stack_trace = original


def _new_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose executor runs each call where it is submitted. The SDK sends every RPC to the monitor
    through the loop's executor (a thread, for a gRPC monitor over the network); the mock monitor answers in
    microseconds, so the threads' hand-offs and the loop's waits on them were a tenth of a small stack's run."""
    import concurrent.futures

    class Inline(concurrent.futures.ThreadPoolExecutor):  # asyncio takes only a ThreadPoolExecutor
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
            done: concurrent.futures.Future = concurrent.futures.Future()
            try:
                done.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the awaiting coroutine, as a thread would
                done.set_exception(exc)
            return done

    loop = asyncio.new_event_loop()
    loop.set_default_executor(Inline(max_workers=1))
    return loop


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Close a run's loop; RPCs a program that raised left pending are cancelled first (closing over them would
    print asyncio's warnings after the program's one-line error)."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    asyncio.set_event_loop(None)


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


SHARE = 64  # tenant stacks a forked worker runs before it ends: its uncollected garbage stays under ~50 MiB
_FORKED: dict[str, Any] = {}  # what a forked worker inherits: the tree, the loaded config, the run's options


def _forked_series(names: list[str]) -> list[Synthesis]:
    f = _FORKED
    return _run_series(f["root"], f["region"], f["cfg"], names, f["stack_config"], f["as_of"], f["policy_gate"],
                       f["each"], f["keep_records"], forked=True)


class WorkerDied(RuntimeError):
    """A synthesis worker ended without sending its share's result (killed: out of memory, a signal)."""


def _ended(process: Any, share: list[str]) -> WorkerDied:
    code = process.exitcode
    import signal

    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        how = f"was killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    else:
        how = f"ended with exit code {code}"
    return WorkerDied(f"the worker synthesising {share[0]} to {share[-1]} {how} before sending its result")


def _run_forked(root: Path, region: str, cfg: Config, names: list[str], stack_config: dict[str, str] | None,
                as_of: dt.date | None, policy_gate: bool, workers: int,
                each: Callable[[Synthesis], Any] | None = None, keep_records: bool = True) -> list[Synthesis]:
    """``names`` in ``workers`` processes at a time, contiguous shares in order; the parts come back in ``names``'
    order. A fork inherits the loaded config and the imported SDK, so a worker starts in milliseconds, and each
    worker takes one share and ends: the runs' cyclic garbage (some 5,000 objects a tenant stack) goes with the
    process instead of being collected (a tenth of a stack's run), and a share is small enough that it never weighs
    much (``SHARE``).

    A process per share, watched here: an error in a share is raised as soon as it arrives (the other workers are
    ended), a worker that dies without its result (the kernel's OOM killer) is a ``WorkerDied``, not a wait forever,
    and Ctrl-C ends the workers (they ignore it themselves, so it prints one message, not one per worker); a worker
    whose parent dies ends too (Linux)."""
    import multiprocessing
    import signal
    from multiprocessing.connection import wait

    if not names:
        return []
    # a few shares per worker at least, so an uneven share does not hold up the end
    size = min(SHARE, -(-len(names) // (workers * 4)))
    shares = [names[i:i + size] for i in range(0, len(names), size)]
    context = multiprocessing.get_context("fork")
    done: dict[int, list[Synthesis]] = {}
    running: dict[int, tuple[Any, Any]] = {}  # share -> (process, the pipe its result comes through)
    waiting = list(range(len(shares)))
    try:
        _FORKED.update(root=root, region=region, cfg=cfg, stack_config=stack_config, as_of=as_of,
                       policy_gate=policy_gate, each=each, keep_records=keep_records, parent=os.getpid())
        while waiting or running:
            while waiting and len(running) < workers:
                i = waiting[0]
                reader, writer = context.Pipe(duplex=False)
                others = [r for _, r in running.values()]
                process = context.Process(target=_share_main, args=(shares[i], writer, [reader, *others]),
                                          daemon=True)
                running[i] = (process, reader)
                waiting.pop(0)
                # Ctrl-C held back while forking: the worker ignores it from its first line on
                blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
                try:
                    process.start()
                except OSError as exc:  # no memory or processes left to fork
                    raise WorkerDied(f"cannot start a synthesis worker: {exc.strerror or exc}") from None
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                    writer.close()
            ready = set(wait([r for _, r in running.values()] + [p.sentinel for p, _ in running.values()]))
            for i, (process, reader) in list(running.items()):
                if reader not in ready and process.sentinel not in ready:
                    continue
                try:
                    ok, payload = reader.recv()  # the whole result; EOF when the worker died before or while sending
                except (EOFError, OSError):
                    process.join()
                    raise _ended(process, shares[i]) from None
                process.join(30)
                if process.exitcode is None:  # sent, then stuck on its way out
                    process.kill()
                    process.join()
                process.close()
                reader.close()
                del running[i]
                if not ok:
                    raise payload
                done[i] = payload
    finally:
        for process, reader in running.values():
            if process.pid is not None:  # started
                process.kill()
                process.join()
            reader.close()
        _FORKED.clear()
    return [part for i in range(len(shares)) for part in done[i]]


def _sendable(exc: BaseException) -> BaseException:
    """A worker's exception as the parent can rebuild it: itself where it survives pickling, else one of its kind
    with its text (a Pulumi RunError stays a RunError, so the command's one-line refusal still applies); an exit
    (``SystemExit``) is an error here, as the worker never meant to end the command; the worker's traceback rides
    along as a note."""
    import pickle
    import traceback

    import pulumi

    if isinstance(exc, SystemExit | KeyboardInterrupt):
        out: BaseException = RuntimeError(f"the stack program exited ({type(exc).__name__} {exc})")
    else:
        try:
            pickle.loads(pickle.dumps(exc))
            out = exc
        except Exception:
            kind = pulumi.RunError if isinstance(exc, pulumi.RunError) else RuntimeError
            out = kind(f"{type(exc).__name__}: {exc}" if kind is RuntimeError else str(exc))
    out.__notes__ = [*getattr(out, "__notes__", []), "in the synthesis worker:\n" +
                     "".join(traceback.format_exception(exc)).rstrip()]
    return out


def _share_main(names: list[str], result: Any, inherited: list[Any]) -> None:
    """A worker: its share, sent back whole (or the exception it raised)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends its workers on Ctrl-C
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    for reader in inherited:  # the parent's ends of the pipes: a dead parent must read as a broken pipe here
        reader.close()
    _die_with_parent(_FORKED["parent"])
    try:
        payload: tuple[bool, Any] = (True, _forked_series(names))
    except BaseException as exc:  # handed to the parent, which raises it
        payload = (False, _sendable(exc))
    try:
        try:
            result.send(payload)
        except (BrokenPipeError, EOFError):
            raise
        except Exception as exc:  # a result that does not pickle
            result.send((False, RuntimeError(f"the synthesis worker cannot send its result: {exc}")))
    except (BrokenPipeError, EOFError, OSError):
        os._exit(1)  # the parent is gone: nothing to say, no one to say it to
    result.close()


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel ends this worker when its parent dies (prctl PR_SET_PDEATHSIG), so a synthesis killed by
    the OOM killer or a timeout leaves no worker behind holding its share's memory."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _run_series(root: Path, region: str, cfg: Config, names: list[str], stack_config: dict[str, str] | None,
                as_of: dt.date | None, policy_gate: bool, each: Callable[[Synthesis], Any] | None = None,
                keep_records: bool = True, forked: bool = False) -> list[Synthesis]:
    """The stacks ``names`` of ``region``, one after another in this process (``stacks/__main__.py`` of ``root`` run
    as each under mocks, preview=False). ``stack_config`` adds other stack config values (e.g.
    ``sovcloud:managementContext``), as ``pulumi config set`` would; ``as_of`` (default today) is the date allocation
    periods are judged by (stack config ``sovcloud:asOf``); ``policy_gate`` runs the program's own policy gate too
    (off otherwise: the caller is the check).

    What the stacks share is set up once for the series: the event loop, the compiled program, the region's file,
    the loaded config handed to the program, the gate's switch, the SDK's stack walk left out. ``forked``: in a
    worker that ends after the series (``_run_forked``), so the collector never runs: what the parent froze stays
    frozen (collecting it would copy the parent's pages into the worker), and the series' garbage ends with the
    process."""
    if not names:
        return []
    program = root / PROGRAM
    if not program.is_file():
        raise FileNotFoundError(f"{program} not found: the stack program synth runs")
    # The SDK keeps about a hundred objects alive per resource until the run ends, and the run makes little cyclic
    # garbage: with the cyclic collector on, it rescans the growing heap again and again to free almost nothing (a
    # third of the run at 10,000 resources), and once the run is over the first collection walks every object it
    # made (seconds). So the collector is off while the programs run, and what the series made is then frozen (moved
    # out of the collector's sight) rather than scanned. The next series unfreezes and collects it first: a process
    # that synthesises many times (the tests) frees each run's garbage, a one-shot command never pays for it. Memory,
    # for callers that live long: every object alive at the end (the caller's too) is out of the collector's sight
    # until then.
    was_enabled = gc.isenabled()
    if gc.get_freeze_count() and not forked:  # an earlier synthesis here: free what it left (nothing before)
        gc.unfreeze()
        gc.collect()
    gc.disable()
    shared = _Series(_new_loop(), _platform_config(root, region), _compiled(program))
    config_loader.preload(root, cfg, {region: shared.region_object})
    # under mocks the program is being checked, not applied: its own policy gate (which runs this) stays off
    from sovcloud.engine.gate import GATE_ENV

    gate_before = os.environ.get(GATE_ENV)
    os.environ[GATE_ENV] = "off" if not policy_gate else "on"
    try:
        with _without_stack_traces():
            parts = []
            for i, name in enumerate(names, 1):
                part = _run_stack(shared, root, name, cfg, stack_config, as_of)
                if each is not None:
                    part.result = each(part)
                if not keep_records and part.stack != region:  # Helm releases stay: rendering reads them
                    part.tally, part.records = part.counts(), [r for r in part.records if r.type == HELM_RELEASE]
                parts.append(part)
                if i % 20 == 0 and not forked:
                    gc.collect(1)  # the young garbage of the last stacks' runs; what outlives them waits for the end
            return parts
    finally:
        if gate_before is None:
            os.environ.pop(GATE_ENV, None)
        else:
            os.environ[GATE_ENV] = gate_before
        config_loader.preload(root, None)
        gc.freeze()
        if was_enabled:
            gc.enable()
        _close(shared.loop)


def _run_stack(shared: _Series, root: Path, stack: str, cfg: Config, stack_config: dict[str, str] | None,
               as_of: dt.date | None) -> Synthesis:
    """One stack of a series (``_run_series``): the SDK's state reset, the program run, its registrations."""
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import wait_for_rpcs

    from sovcloud import stacks

    region, tenant = stacks.parse(stack)
    day = as_of or dt.date.today()
    # what the platform stack exports once applied, for a tenant stack's StackReference
    context = shared.context(cfg, region) if tenant else None

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            if args.typ == "pulumi:pulumi:StackReference":
                return args.inputs.get("name", ""), {**args.inputs, "outputs": {stacks.CONTEXT_OUTPUT: context},
                                                     "secretOutputNames": []}
            return f"{args.name}-id", args.inputs  # state = inputs: outputs such as metadata.name resolve

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
            return {}

    asyncio.set_event_loop(shared.loop)
    mocks = Mocks()
    # a tenant stack's read of the platform is answered alike in every tenant stack of the series
    monitor = _monitor_class()(mocks, shared.reads if tenant else None)
    settings.ROOT.set(None)  # set_mocks keeps an earlier run's root Stack; each synthesis gets its own
    # a run the program ended with an error can leave RPCs of its closed loop behind: the next run would wait on
    # them forever (the SDK's own test decorator clears the same state)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_mocks(mocks, project="sovcloud", stack=stack, preview=False, monitor=monitor,
                             organization="organization")
    # a tenant stack's config holds no region: it reads the platform's output
    own = shared.platform_config if tenant is None else {}
    pulumi.runtime.set_all_config({**own, "sovcloud:asOf": day.isoformat(), **(stack_config or {})})
    _run_program(root / PROGRAM, shared.code)
    shared.loop.run_until_complete(wait_for_rpcs())
    # registrations complete in whatever order the event loop runs them: sort for stable output
    return Synthesis(region, sorted(monitor.records, key=lambda r: r.urn), day, stack=stack)


_COMPILED: dict[tuple[str, bytes], Any] = {}


def _compiled(program: Path) -> Any:
    """The program compiled once per process (per path and content of the file), as runpy compiles it: none of
    this module's __future__ flags."""
    source = program.read_bytes()
    key = (str(program), hashlib.blake2b(source, digest_size=16).digest())
    if key not in _COMPILED:
        _COMPILED[key] = compile(source, str(program), "exec", dont_inherit=True)
    return _COMPILED[key]


def _run_program(program: Path, code: Any) -> None:
    """``runpy.run_path(program, run_name="__main__")`` of the compiled ``code``: a fresh ``__main__`` module and
    ``sys.argv[0]`` as runpy sets them, around the run."""
    import sys
    import types

    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=str(program), __cached__=None, __loader__=None, __package__="", __spec__=None)
    saved_main, saved_argv0 = sys.modules.get("__main__"), sys.argv[0] if sys.argv else None
    sys.modules["__main__"] = module
    if sys.argv:
        sys.argv[0] = str(program)
    try:
        exec(code, module.__dict__)  # the stack program, as runpy runs it
    finally:
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        if saved_argv0 is not None:
            sys.argv[0] = saved_argv0


def render_releases(synthesis: Synthesis, chart_folders: list[Path]) -> None:
    """Render every Helm release of the synthesis with Helm's engine, from charts found in ``chart_folders``; a
    release whose chart is not there is noted (one line) and left unrendered."""
    from sovcloud import render

    if not render.available():
        synthesis.not_rendered = [render.UNAVAILABLE]
        return
    specs = [helm_spec(r.inputs) for r in synthesis.helm_releases()]
    synthesis.rendered, synthesis.not_rendered = render.render_all(specs, render.ChartIndex(chart_folders))


def chart_folders(root: Path, cfg: Config, region: str, given: list[Path] | None) -> list[Path]:
    """Where the region's charts are: ``--charts`` folders when given, else the region's ``chartSources``."""
    if given:
        return list(given)
    source = cfg.regions[region].registries.chart_sources
    return [root / source] if source else []


def _platform_config(root: Path, region: str) -> dict[str, str]:
    """What the Pulumi CLI hands the platform stack's program from its stack file: ``sovcloud:region`` (as JSON
    text) and the plain settings it reads besides (``stackLayout``)."""
    block = config_loader.stack_file_config(root, region)
    return {config_loader.REGION_KEY: json.dumps(block.get(config_loader.REGION_KEY, {})),
            **{k: v for k, v in block.items() if k == LAYOUT_KEY and isinstance(v, str)}}


# ---------------------------------------------------------------------------------------------------- writing

_FIRST = ("apiVersion", "kind", "metadata")


def _manifest(inputs: dict[str, Any]) -> dict[str, Any]:
    first = {k: inputs[k] for k in _FIRST if k in inputs}
    return {**first, **{k: v for k, v in inputs.items() if k not in _FIRST}}


def object_path(inputs: dict[str, Any]) -> Path:
    """Stable, readable place of an object: management/, cluster/ or namespaces/<ns>/, then ``Kind-name.yaml``."""
    kind, meta = inputs.get("kind", "Object"), inputs.get("metadata", {})
    name = meta.get("name", "unnamed")
    ns = meta.get("namespace")
    file = f"{kind}-{name}.yaml"
    if str(inputs.get("apiVersion", "")).startswith(MANAGEMENT_GROUPS):
        return Path("management") / (ns or "_cluster") / file
    if ns and kind not in CLUSTER_SCOPED:
        return Path("namespaces") / ns / file
    return Path("cluster") / file


def helm_spec(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"name": inputs.get("name"), "namespace": inputs.get("namespace"), "chart": inputs.get("chart"),
            "version": inputs.get("version"), "repository": (inputs.get("repositoryOpts") or {}).get("repo"),
            "values": inputs.get("values", {})}


def _yaml(data: Any) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)


class WriteError(OSError):
    """Writing a synthesis's files failed (the disk, permissions): the output folder's problem, not the config's."""


class Duplicate(RuntimeError):
    """Two objects of a synthesis would be written to one file."""


class Writer:
    """The files of a synthesis under ``out/<region>``, replacing it whole: written to a staging directory beside it
    (created here), then swapped in by ``finish``; a failure (``abort``) leaves the old output intact.

    Called with each stack's synthesis (``synth.run``'s ``each``: a worker writes its share of the stacks), it writes
    the stack's manifests and Helm release specs and returns their paths; ``finish`` adds the rendered releases and
    plan.json, refuses two objects of one path across all stacks, and swaps."""

    def __init__(self, out: Path, region: str):
        self.region, self.target = region, out / region
        try:
            out.mkdir(parents=True, exist_ok=True)
            # a synth killed mid-write leaves its staging (or swapped-out) directory: clear this region's stale ones
            for stale in out.glob(f".{region}-*"):
                if stale.is_dir() and time.time() - stale.stat().st_mtime > 3600:
                    shutil.rmtree(stale, ignore_errors=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{region}-", dir=out))
        except OSError as exc:
            raise WriteError(exc.errno, exc.strerror, exc.filename) from exc
        self._made: set[Path] = set()

    def _put(self, rel: Path, text: str, written: set[Path]) -> None:
        if rel in written:
            raise Duplicate(f"two objects would be written to {rel}")
        written.add(rel)
        try:
            if rel.parent not in self._made:
                (self.staging / rel.parent).mkdir(parents=True, exist_ok=True)
                self._made.add(rel.parent)
            (self.staging / rel).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise WriteError(exc.errno, exc.strerror, exc.filename) from exc

    def __call__(self, part: Synthesis) -> list[str]:
        written: set[Path] = set()
        for rec in part.kubernetes_objects():
            self._put(object_path(rec.inputs), _yaml(_manifest(rec.inputs)), written)
        for rec in part.helm_releases():
            self._put(Path("helm") / f"{rec.inputs.get('name', rec.name)}.yaml", _yaml(helm_spec(rec.inputs)),
                      written)
        return sorted(str(p) for p in written)

    def finish(self, synthesis: Synthesis, plan: dict[str, Any], written: list[list[str]]) -> Path:
        """``written``: what each stack's call returned."""
        try:
            seen: set[Path] = set()
            for rel in (Path(p) for paths in written for p in paths):
                if rel in seen:
                    raise Duplicate(f"two objects would be written to {rel}")
                seen.add(rel)
            for rendered in synthesis.rendered:
                base = Path("rendered") / rendered.release
                for source, obj in rendered.all_objects():
                    self._put(base / rendered_path(source, obj), _yaml(obj), seen)
            try:
                (self.staging / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=False) + "\n",
                                                        encoding="utf-8")
                self._swap()
            except OSError as exc:
                raise WriteError(exc.errno, exc.strerror, exc.filename) from exc
        except BaseException:
            self.abort()
            raise
        return self.target

    def _swap(self) -> None:
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.region}-old-{os.getpid()}")
            self.target.rename(old)
        try:
            self.staging.rename(self.target)
        except OSError:
            if old is not None:  # the old output back where it was
                old.rename(self.target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def rendered_path(source: str, obj: dict[str, Any]) -> Path:
    """``crds/<name>.yaml`` for a CRD, else ``[<namespace>/]<Kind>-<name>.yaml``."""
    meta = obj.get("metadata") or {}
    if source == "crds" or obj.get("kind") == "CustomResourceDefinition":
        return Path("crds") / f"{meta.get('name', 'unnamed')}.yaml"
    file = f"{obj.get('kind', 'Object')}-{meta.get('name', 'unnamed')}.yaml"
    return Path(meta["namespace"]) / file if meta.get("namespace") else Path(file)


def render_summary(synthesis: Synthesis) -> dict[str, Any]:
    """plan.json's ``rendered``: per release, chart, version and object counts (or Helm's error)."""
    out: dict[str, Any] = {}
    for r in synthesis.rendered:
        entry: dict[str, Any] = {"chart": r.chart, "version": r.version, "objects": len(r.objects),
                                 "crds": len(r.crds)}
        if r.error:
            entry["error"] = r.error
        out[r.release] = entry
    return {"releases": out, "objects": sum(len(r.objects) + len(r.crds) for r in synthesis.rendered),
            "notRendered": list(synthesis.not_rendered)}


def plan(synthesis: Synthesis, cfg: Config) -> dict[str, Any]:
    """plan.json: resource counts by type, GPU capacity per pool, guaranteed and borrowable GPUs per tenant."""
    from components.region import region_args, summary
    from sovcloud.engine import capacity

    region = cfg.regions[synthesis.region]
    s = summary(region_args(cfg, synthesis.region, synthesis.as_of))
    return {
        "region": region.name, "displayName": region.display_name, "tier": region.tier, "asOf": s["asOf"],
        "kubernetesVersion": region.kubernetes_version,
        "stacks": {p.stack: sum(p.counts().values()) for p in synthesis.stacks()},
        "resources": {"total": sum(synthesis.counts().values()), "byType": synthesis.counts()},
        # the figures every command shares (sovcloud.engine.capacity): guaranteed counts MIG instances as GPU shares
        "gpus": {"capacity": region.gpus, "backed": capacity.backed_gpus(region),
                 "guaranteed": capacity.guaranteed(cfg, region.name, synthesis.as_of),
                 "borrowable": sum(t["borrowable"] for t in s["tenants"].values())},
        "pools": s["pools"], "tenants": s["tenants"], "rendered": render_summary(synthesis),
    }
