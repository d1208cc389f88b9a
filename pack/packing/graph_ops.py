"""Which ops of a SavedModel lambdapack refuses to run on this machine, found without running it.

Loading a SavedModel (``tf.saved_model.load``) and calling its signature execute its
graph: an op in it can write or read files, reach the network or call back into
Python. ``unsafe_ops`` walks the parsed ``saved_model.pb`` — the graph's nodes and
every function of its library — and lists the ops below with the function that holds
them. The conversion and inspection children call it (``convert_child.refuse_unsafe_ops``)
before TensorFlow loads the model; ``--allow-unsafe-ops`` skips the refusal.

Every SavedModel holds checkpoint ops in its saver: ``SaveV2`` and ``MergeV2Checkpoints``
in the function behind ``saver_def.save_tensor_name`` (``__inference__traced_save_N``),
``RestoreV2`` in the one behind ``saver_def.restore_op_name``. Loading never calls the
save path, and TensorFlow 2 restores variables without the graph's restore function (a
TensorFlow 1 SavedModel's restore op runs at load, with the model's own variables file).
So a save op is allowed only in what the save path alone reaches, a restore op only in
what the restore path alone reaches; anywhere a signature or another function can run
them, they are refused like the rest.

Pure: works on the parsed protobuf (``saved_model_pb2.SavedModel``), imports nothing of
TensorFlow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WRITES = "writes files on this machine"
READS = "reads files on this machine"
PYTHON = "runs Python code on this machine"
NETWORK = "talks to other machines over the network"

# Op -> why it is refused (TensorFlow's registered op names).
UNSAFE_OPS: dict[str, str] = {
    "WriteFile": WRITES,
    "ReadFile": READS,
    "MatchingFiles": "lists files on this machine",
    "MatchingFilesDataset": "lists files on this machine",
    "ExperimentalMatchingFilesDataset": "lists files on this machine",
    "FileSystemSetConfiguration": "changes how TensorFlow reaches file systems",
    "ImmutableConst": "maps a file on this machine into memory",
    "PyFunc": PYTHON,
    "PyFuncStateless": PYTHON,
    "EagerPyFunc": PYTHON,
    # Checkpoint ops: refused outside the saver's own save or restore path (see above).
    "Save": WRITES + " (a checkpoint)",
    "SaveV2": WRITES + " (a checkpoint)",
    "SaveSlices": WRITES + " (a checkpoint)",
    "MergeV2Checkpoints": WRITES + " (a checkpoint)",
    "Restore": READS + " (a checkpoint)",
    "RestoreV2": READS + " (a checkpoint)",
    "RestoreSlice": READS + " (a checkpoint)",
    "LoadAndRemapMatrix": READS + " (a checkpoint)",
    "GenerateVocabRemapping": READS + " (vocabulary files)",
    "InitializeTableFromTextFile": READS + " (a lookup table's text file)",
    "InitializeTableFromTextFileV2": READS + " (a lookup table's text file)",
    "ImportEvent": WRITES + " (a summary)",
    "CreateSummaryFileWriter": WRITES + " (summaries)",
    "CreateSummaryDbWriter": WRITES + " (a summary database)",
    "StatsAggregatorSetSummaryWriter": WRITES + " (summaries)",
    "TFRecordDataset": READS,
    "TFRecordDatasetV2": READS,
    "FixedLengthRecordDataset": READS,
    "FixedLengthRecordDatasetV2": READS,
    "TextLineDataset": READS,
    "CSVDataset": READS,
    "CSVDatasetV2": READS,
    "ExperimentalCSVDataset": READS,
    "LMDBDataset": READS,
    "ExperimentalLMDBDataset": READS,
    "SqlDataset": READS + " (a database)",
    "ExperimentalSqlDataset": READS + " (a database)",
    "RecordInput": READS,
    "LoadDataset": READS,
    "SnapshotDataset": WRITES + " (a dataset snapshot)",
    "SnapshotDatasetV2": WRITES + " (a dataset snapshot)",
    "SnapshotDatasetReader": READS,
    "SnapshotNestedDatasetReader": READS,
    "SnapshotChunkDataset": READS,
    "ListSnapshotChunksDataset": READS,
    "SaveDataset": WRITES,
    "SaveDatasetV2": WRITES,
    "DistributedSave": WRITES,
    "DatasetToTFRecord": WRITES,
    "ExperimentalDatasetToTFRecord": WRITES,
    "CacheDataset": WRITES + " (a dataset cache, when given a file name)",
    "CacheDatasetV2": WRITES + " (a dataset cache, when given a file name)",
    "RemoteCall": NETWORK,
    "RpcClient": NETWORK,
    "RpcCall": NETWORK,
    "RpcServer": NETWORK,
    "RpcServerStart": NETWORK,
    "RpcServerRegister": NETWORK,
    "Rpc": NETWORK,  # TensorFlow 1's tf.contrib.rpc
    "TryRpc": NETWORK,
    "RegisterDataset": NETWORK + " (the tf.data service)",
    "RegisterDatasetV2": NETWORK + " (the tf.data service)",
    "DataServiceDataset": NETWORK + " (the tf.data service)",
    "DataServiceDatasetV2": NETWORK + " (the tf.data service)",
    "DataServiceDatasetV3": NETWORK + " (the tf.data service)",
    "DataServiceDatasetV4": NETWORK + " (the tf.data service)",
    "Send": NETWORK + " (sends tensors to another device or task)",
    "Recv": NETWORK + " (receives tensors from another device or task)",
    "_Send": NETWORK + " (sends tensors to another device or task)",
    "_Recv": NETWORK + " (receives tensors from another device or task)",
    "_HostSend": NETWORK + " (sends tensors to another device or task)",
    "_HostRecv": NETWORK + " (receives tensors from another device or task)",
}

# Families of ops, by name (searched with re.search) -> why.
UNSAFE_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"Reader", READS + " (a TensorFlow 1 reader)"),
    (r"^Write\w*Summary$", WRITES + " (a summary)"),
    (r"^Debug", "sends tensors to a debugger's files or server (tfdbg)"),
    (r"^Collective", NETWORK + " (collective communication between workers)"),
)

# Ops that are safe with their default attribute and unsafe with others: op -> (attribute,
# the values that are safe, why the others are not).
UNSAFE_ATTRIBUTES: dict[str, tuple[str, tuple[bytes, ...], str]] = {
    "PrintV2": (
        "output_stream",
        (b"stderr", b"stdout", b"log(info)", b"log(warning)", b"log(error)"),
        WRITES + " (prints to a file)",
    ),
    "DecodeProtoV2": ("descriptor_source", (b"local://",), READS + " (a protobuf descriptor file)"),
    "EncodeProto": ("descriptor_source", (b"local://",), READS + " (a protobuf descriptor file)"),
}

CHECKPOINT_SAVE_OPS = frozenset({"Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints"})
CHECKPOINT_RESTORE_OPS = frozenset({"Restore", "RestoreV2", "RestoreSlice"})
GRAPH = "the graph"  # where a top-level node is, for the message


@dataclass(frozen=True)
class UnsafeOp:
    op: str
    function: str  # the library function holding it, or GRAPH
    reason: str

    def text(self) -> str:
        where = GRAPH if self.function == GRAPH else f"function {self.function}"
        return f"op {self.op} in {where} ({self.reason})"


def why_unsafe(op: str, attrs=None) -> str | None:
    """Why ``op`` (with its node's ``attrs``, an AttrValue map) is refused; None: it is not."""
    if op in UNSAFE_OPS:
        return UNSAFE_OPS[op]
    for pattern, reason in UNSAFE_FAMILIES:
        if re.search(pattern, op):
            return reason
    if op in UNSAFE_ATTRIBUTES and attrs is not None:
        name, safe, reason = UNSAFE_ATTRIBUTES[op]
        if name in attrs and attrs[name].s not in safe:
            return reason
    return None


def unsafe_ops(saved_model) -> list[UnsafeOp]:
    """Every refused op in a parsed SavedModel, sorted, each with the function that holds it."""
    found: set[UnsafeOp] = set()
    for meta in saved_model.meta_graphs:
        found.update(_unsafe_in_meta_graph(meta))
    return sorted(found, key=lambda item: (item.function, item.op))


def _unsafe_in_meta_graph(meta) -> set[UnsafeOp]:
    graph = meta.graph_def
    library = {function.signature.name: function for function in graph.library.function}
    nodes = {node.name: node for node in graph.node}
    save_nodes = _upstream(nodes, [meta.saver_def.save_tensor_name])
    restore_nodes = _upstream(nodes, [meta.saver_def.restore_op_name])
    # Any node outside the saver can be run (a signature, an init op, any tensor a TensorFlow 1
    # loader is asked for), and so can everything it depends on.
    runnable_nodes = _upstream(nodes, sorted(set(nodes) - save_nodes - restore_nodes))
    save_functions = _reachable(library, _called([nodes[name] for name in save_nodes], library))
    restore_functions = _reachable(library, _called([nodes[name] for name in restore_nodes], library))
    # Likewise any function not reached through the saver alone: signatures, the object graph's
    # functions, functions nothing in the graph names (TensorFlow 2 restores them all).
    roots = _called([nodes[name] for name in runnable_nodes], library)
    roots |= set(library) - save_functions - restore_functions
    roots |= set(meta.object_graph_def.concrete_functions) & set(library)
    runnable = _reachable(library, roots)

    found: set[UnsafeOp] = set()
    for name, node in nodes.items():
        save_only, restore_only = _path_only(name, save_nodes, restore_nodes, runnable_nodes)
        found.update(_check(node, GRAPH, save_only, restore_only))
    for name, function in library.items():
        save_only, restore_only = _path_only(name, save_functions, restore_functions, runnable)
        for node in function.node_def:
            found.update(_check(node, name, save_only, restore_only))
    return found


def _path_only(name: str, save: set[str], restore: set[str], runnable: set[str]) -> tuple[bool, bool]:
    """Is ``name`` reached by the saver's save path alone; by its restore path alone?"""
    if name in runnable:
        return False, False
    return name in save and name not in restore, name in restore and name not in save


def _check(node, where: str, save_path: bool, restore_path: bool) -> list[UnsafeOp]:
    if save_path and node.op in CHECKPOINT_SAVE_OPS:
        return []
    if restore_path and node.op in CHECKPOINT_RESTORE_OPS:
        return []
    reason = why_unsafe(node.op, node.attr)
    return [] if reason is None else [UnsafeOp(node.op, where, reason)]


def _node_name(reference: str) -> str:
    """``"^name"``, ``"name:0"`` -> ``"name"``."""
    return reference.lstrip("^").split(":")[0]


def _upstream(nodes: dict, references: list[str]) -> set[str]:
    """The top-level nodes ``references`` name and every node they depend on (data or control)."""
    pending = [_node_name(reference) for reference in references if reference]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        pending.extend(_node_name(item) for item in nodes[name].input)
    return seen


def _called(nodes, library: dict) -> set[str]:
    """The library functions these nodes call: by op name, or in a function attribute
    (``f`` of a PartitionedCall, ``body``/``cond`` of a While, branches of an If, …)."""
    called: set[str] = set()
    for node in nodes:
        if node.op in library:
            called.add(node.op)
        for value in node.attr.values():
            if value.HasField("func"):
                called.add(value.func.name)
            if value.HasField("list"):
                called.update(item.name for item in value.list.func)
    return called & set(library)


def _reachable(library: dict, roots: set[str]) -> set[str]:
    """``roots`` and every library function they call, transitively."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen or name not in library:
            continue
        seen.add(name)
        pending.extend(_called(library[name].node_def, library) - seen)
    return seen
