"""Closed-loop stimulus: rules that turn poses and behaviour into on/off triggers.

A *rule* watches the stream of 3D poses (:class:`~.interface.PoseFrame`, from ``Pose3D``)
and behaviour estimates (:class:`~.interface.BehaviorFrame`, from ``Behavior``) and
returns a :class:`~.interface.Trigger` (stimulus on or off) when its condition starts or
stops holding. The interface (:class:`~.interface.Rule`) is three methods, like
DeepLabCut-Live's ``Processor``:

``on_pose(frame) -> Trigger | None``
    Called for every pose, in stamp order.
``on_behavior(frame) -> Trigger | None``
    Called for every behaviour estimate.
``reset() -> None``
    Forget all state (a new session, or the stream's stamps went back).

Contract: every method returns quickly (well under one frame period: no file or
network I/O, no sleeping, no waiting on locks held elsewhere). A rule that needs heavy
work runs it in a thread of its own and reads the latest result in ``on_pose``. The
methods are only ever called from one thread at a time (the runner's worker), so a rule
needs no locks for its own state.

Modules
-------
:mod:`.interface`
    What a rule sees and returns: the frames, :class:`~.interface.Trigger` and the
    :class:`~.interface.Rule` interface a lab's own rule implements.
:mod:`.regions`
    Regions of the arena floor (circle, rectangle, polygon) and the parser of the
    ``region`` parameter.
:mod:`.builtin_rules`
    The two built-in rules: :class:`~.builtin_rules.BehaviorRule` (a behaviour's
    probability above ``p`` for ``k`` consecutive frames) and
    :class:`~.builtin_rules.RegionRule` (a keypoint inside a region of the floor).
:mod:`.loader`
    :func:`~.loader.load_rule`: a built-in rule, or a lab's own class in a module or a
    ``.py`` file (``"package.module:ClassName"`` or ``"/path/to/file.py:ClassName"``,
    see ``mouse_lifter_ros/examples/nose_height_rule.py``), from a spec or from the
    stimulus node's parameters.
:mod:`.runner`
    :class:`~.runner.StimulusRunner` runs a rule behind a bounded queue in a worker
    thread, so that the ROS callback only enqueues: it never waits for the rule. A full
    queue drops its oldest frame (counted). Each trigger is handed to a callback (the
    node publishes it) with its latency, the clock's time minus the stamp of the frame
    that caused it.

Time: stamps are ``int`` nanoseconds (the capture stamp of the source image). The
built-in rules treat a frame whose stamp equals the previous one as a duplicate
(ignored) and a stamp that goes back as a new stream (state reset, and an off trigger
if the stimulus was on). Positions are metres in the arena frame (REP-103: x, y on the
floor, z up, origin at the arena centre).
"""
