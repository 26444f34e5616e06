"""A resource monitor and engine over gRPC, on loopback, standing in for the Pulumi engine: it records each
registration as it arrives (type, name, parent, custom, provider, options, inputs) and answers with the engine's
URN and the inputs as the state. The test harness's own code; the protocol definitions come from the installed
``pulumi`` package."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, resource_pb2, resource_pb2_grpc

from sovcloud.engine.synth import Record


def engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """The engine's URN: the parent's qualified type chain (the root stack left out), then the type."""
    if parent:
        qualified = parent.split("::")[2]
        if qualified != "pulumi:pulumi:Stack":
            type_ = f"{qualified}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


@dataclass
class Monitor(resource_pb2_grpc.ResourceMonitorServicer, engine_pb2_grpc.EngineServicer):
    stack: str
    project: str
    registrations: list[Record] = field(default_factory=list)  # what synth records, as the engine is sent it
    logs: list[str] = field(default_factory=list)
    root: str = ""
    stack_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # what a StackReference reads, by stack
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ResourceMonitor
    def SupportsFeature(self, request: Any, context: Any) -> Any:
        # what a current engine supports and the SDK asks about
        return resource_pb2.SupportsFeatureResponse(hasSupport=request.id in {
            "secrets", "resourceReferences", "outputValues", "deletedWith", "aliasSpecs"})

    def RegisterResource(self, request: Any, context: Any) -> Any:
        urn = engine_urn(self.stack, self.project, request.parent, request.type, request.name)
        with self.lock:
            if request.type != "pulumi:pulumi:Stack":
                self.registrations.append(Record(
                    urn, request.type, request.name, request.parent, request.custom, request.provider,
                    request.retainOnDelete, request.protect, json_format.MessageToDict(request.object),
                    tuple(sorted(request.dependencies))))
        state = struct_pb2.Struct()
        state.CopyFrom(request.object)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=f"{request.name}-id" if request.custom else "",
                                                     object=state)

    def ReadResource(self, request: Any, context: Any) -> Any:
        """A read; here only a StackReference's, answered as the engine does: the referenced stack's outputs."""
        urn = engine_urn(self.stack, self.project, request.parent, request.type, request.name)
        props = json_format.MessageToDict(request.properties)
        state = struct_pb2.Struct()
        state.update({**props, "outputs": self.stack_outputs.get(props.get("name", ""), {}), "secretOutputNames": []})
        return resource_pb2.ReadResourceResponse(urn=urn, properties=state)

    def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    def Invoke(self, request: Any, context: Any) -> Any:
        return resource_pb2.InvokeResponse(**{"return": struct_pb2.Struct()})

    def SignalAndWaitForShutdown(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    # Engine
    def Log(self, request: Any, context: Any) -> Any:
        with self.lock:
            self.logs.append(request.message)
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:
        return engine_pb2.GetRootResourceResponse(urn=self.root)

    def SetRootResource(self, request: Any, context: Any) -> Any:
        self.root = request.urn
        return engine_pb2.SetRootResourceResponse()


def serve(monitor: Monitor) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    resource_pb2_grpc.add_ResourceMonitorServicer_to_server(monitor, server)
    engine_pb2_grpc.add_EngineServicer_to_server(monitor, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
