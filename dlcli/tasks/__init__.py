"""Tasks as components: one file per task, each a :class:`~dlcli.tasks.base.Task` registered in ``TASKS``.

Everything that differs between task kinds (targets, output width, loss, predictions, metrics, the
best-epoch monitor, evaluation and prediction tables) is asked of the task object, never decided by
comparing task names elsewhere. ``dlcli list tasks`` lists them; a plugin registers its own with
``@TASKS.register()`` on a ``Task`` subclass.
"""

from __future__ import annotations

from functools import cache

from dlcli.errors import DlcliError
from dlcli.registry import LOSSES, TASKS, load_components
from dlcli.tasks.base import Task


@cache
def _instance(name: str) -> Task:
    return TASKS.get(name).fn()


def get_task(name: str) -> Task:
    """The registered task ``name`` (an instance; tasks keep no state)."""
    if name not in TASKS:
        load_components()
    return _instance(name)


def loss_tasks(loss: str) -> tuple[str, ...]:
    """The tasks the registered loss ``loss`` fits: the ones its registration names
    (``@LOSSES.register(tasks=("multiclass",))``), or every task when it names none: a plugin's loss
    registered without ``tasks=`` is taken to work on whatever outputs and targets the task gives it."""
    load_components()
    declared = LOSSES.get(loss).meta.get("tasks")
    if isinstance(declared, str):  # tasks="multiclass": one task, not its letters
        declared = (declared,)
    return tuple(declared) if declared else tuple(TASKS.names())


def choose_task(requested: str, kind: str, loss_name: str, loss_tasks: tuple[str, ...], data_name: str) -> Task:
    """The task a run trains: ``requested``, or for ``task=auto`` the one that takes the data's ``kind``
    and fits the loss (by ``auto_rank``); a DlcliError when the loss does not fit the task."""
    load_components()
    if requested != "auto":
        task = get_task(requested)
    else:
        takers = sorted((get_task(e.name) for e in TASKS if e.fn.auto_kind == kind), key=lambda t: t.auto_rank)
        if not takers:
            raise DlcliError(f"no task takes data '{data_name}' (targets of kind '{kind}'); set task=... "
                             f"(tasks: {', '.join(TASKS.names())})")
        task = next((t for t in takers if t.name in loss_tasks), takers[0])
    if task.name not in loss_tasks:
        raise DlcliError(f"loss '{loss_name}' does not fit a {task.name} task (data '{data_name}'; "
                         f"the loss fits {', '.join(loss_tasks)}). Use loss={task.default_loss}")
    return task


def default_monitor(task: str) -> tuple[str, str]:
    """The metric (and its mode) that picks the best epoch when a callback says ``monitor: auto``."""
    return get_task(task).monitor


def auto_monitor(loss_tasks: tuple[str, ...]) -> tuple[str, str]:
    """Before the data is read (a sweep's direction): the monitor of the first task the loss fits,
    by ``auto_rank`` among the tasks that ``task=auto`` may choose."""
    load_components()
    fits = sorted((get_task(n) for n in loss_tasks if n in TASKS), key=lambda t: (t.auto_kind is None, t.auto_rank))
    return fits[0].monitor if fits else get_task("multiclass").monitor


def planned_monitor(requested: str, loss_tasks: tuple[str, ...]) -> tuple[str, str]:
    """The best-epoch monitor of a configured run before its data is read: the task's, or for
    ``task=auto`` the one :func:`auto_monitor` expects from the loss."""
    return auto_monitor(loss_tasks) if requested == "auto" else default_monitor(requested)


__all__ = ["Task", "TASKS", "auto_monitor", "choose_task", "default_monitor", "get_task", "loss_tasks",
           "planned_monitor"]
