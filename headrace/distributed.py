"""v1's distributed job configurations (``azureml.core.runconfig``): how many processes a
step starts.

A headrace step runs on one runner, so a configuration runs its processes there, side by
side, each told its place through the usual rank variables (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``NODE_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
A node count above one needs runners that start together, which headrace cannot schedule
yet: it is refused when the configuration is made, naming what to use instead.
"""

from __future__ import annotations

from headrace.errors import NotSupportedError

__all__ = ["MpiConfiguration", "PyTorchConfiguration", "TensorflowConfiguration"]

#: the most processes one step may start: beyond this a step is better split into steps
MAX_PROCESSES = 64


def _one_node(kind: str, node_count: int) -> None:
    if node_count != 1:
        raise NotSupportedError(
            f"{kind}(node_count={node_count}) (a job across several nodes)",
            "run on one node: give the processes with process_count_per_node (MPI) or "
            "process_count (PyTorch), or split the work across steps; a step runs on one "
            "runner",
        )


def _process_count(kind: str, field: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PROCESSES:
        raise ValueError(
            f"{kind}({field}={value!r}): give a whole number from 1 to {MAX_PROCESSES}"
        )
    return value


class MpiConfiguration:
    """``MpiConfiguration(process_count_per_node=, node_count=)``: that many processes of the
    step's command on its runner. No ``mpirun`` is started: programs that read the rank
    variables (PyTorch, most launchers) work; ones that need an MPI runtime do not."""

    def __init__(self, process_count_per_node: int = 1, node_count: int = 1) -> None:
        _one_node("MpiConfiguration", node_count)
        self.process_count_per_node = _process_count(
            "MpiConfiguration", "process_count_per_node", process_count_per_node
        )
        self.node_count = node_count

    @property
    def processes(self) -> int:
        return self.process_count_per_node

    def __repr__(self) -> str:
        return f"MpiConfiguration(process_count_per_node={self.process_count_per_node})"


class PyTorchConfiguration:
    """``PyTorchConfiguration(communication_backend=, process_count=, node_count=)``: the
    processes ``torch.distributed`` expects, with ``MASTER_ADDR``/``MASTER_PORT`` set."""

    def __init__(
        self,
        communication_backend: str = "Nccl",
        process_count: int | None = None,
        node_count: int = 1,
    ) -> None:
        _one_node("PyTorchConfiguration", node_count)
        if communication_backend not in ("Nccl", "Gloo"):
            raise ValueError(
                f"PyTorchConfiguration(communication_backend={communication_backend!r}): "
                "give 'Nccl' or 'Gloo'"
            )
        self.communication_backend = communication_backend
        self.process_count = _process_count(
            "PyTorchConfiguration", "process_count", process_count or node_count
        )
        self.node_count = node_count

    @property
    def processes(self) -> int:
        return self.process_count

    def __repr__(self) -> str:
        return (
            f"PyTorchConfiguration(communication_backend={self.communication_backend!r}, "
            f"process_count={self.process_count})"
        )


class TensorflowConfiguration:
    """Parameter-server training across workers: refused (it needs several nodes)."""

    def __init__(self, worker_count: int = 1, parameter_server_count: int = 1) -> None:
        raise NotSupportedError(
            "TensorflowConfiguration (parameter-server training across nodes)",
            "train on one runner, with tf.distribute.MirroredStrategy for its GPUs, or use "
            "MpiConfiguration(process_count_per_node=N) for N processes",
        )
