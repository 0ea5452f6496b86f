"""Motion of the body model: behaviour generators, labelled sequences and a pose prior.

A sequence is a chain of behaviour bouts (walk, trot, turn, free rearing, rearing
against a wall, grooming, sniffing, resting), each driven by a small controller that
gives, frame by frame, a posture (tail base height and the spine, head and tail bends
of :class:`~mouse_lifter_ros.core.body.Pose`), a root velocity (forward, sideways, yaw
rate) and what the paws do. A simulation shared by all behaviours turns that into poses:

- the root (tail base on the floor, heading) integrates the velocities;
- the paws: a gait clock drives diagonal couplets (left fore with right hind, then
  right fore with left hind) while walking, trotting or turning. A paw in stance stays
  where it was put down in the arena (so it does not slide on the floor; in the
  heading frame it moves backwards at the body speed), a swing lifts it and sets it
  down where it will be under its shoulder or hip at mid-stance (a swing averages at
  most 0.5 m/s: a long one lasts longer; a paw left out of reach lifts early). When
  the gait stops, paws stay planted and step back under the body one at a time when
  they are more than 15 mm off. Paws held up (at the chest when rearing, on the wall,
  at the face when grooming) are blended over the floor position with a weight;
- the tail is dragged along the floor behind the tail base (pushed back along itself
  when the root backs up), its bends relax towards the behaviour's tail shape (faster
  near the base, the tip swept at most 0.3 m/s by it) and segments turn away from the
  walls;
- bouts are crossfaded over 0.25-0.6 s (posture, velocities and paw targets blended;
  longer when the head or held-up paws have far to go), and a last guard shifts the
  root if any joint would cross a wall (rare, and under 0.3 mm in 90% of cases).

Walking and trotting steer away from the walls (a look-ahead point in front of the nose
turns them towards the arena centre within 6 cm of a wall, slowing down); turning on the
spot rotates about a point 3 cm in front of the tail base. ``rear_wall`` first walks to
a standing spot in front of the nearest wall (those frames are labelled ``walk``),
faces it, rises while stepping in and puts the forepaws on the wall, and steps back
down at the end of its bout. Crossfade frames take the new label halfway, early when
the new bout sits up (rear, rear_wall, groom) and late when the old one did.

At 30 fps the trunk, head and tail move under 2 cm per frame; paws in swing, knees
and elbows under ~2.5 cm (3 cm in the tests). Walk and trot hold their speeds away
from walls; near walls they slow down to turn.

Frames and units: the arena frame (x, y on the floor, z up, origin at the arena centre),
metres, radians, seconds. Paw targets of a :class:`~mouse_lifter_ros.core.body.Pose` are
in the heading frame (origin on the floor under the tail base, x along the heading, y
left, z up).
Everything is deterministic given the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from mouse_lifter_ros.core.body import (
    BEHAVIORS,
    JOINTS,
    POSE_FREE,
    POSE_HEAD_ROLL,
    POSE_HEADING,
    POSE_LOWER,
    POSE_PAWS,
    POSE_SPINE_PITCH,
    POSE_SPINE_YAW,
    POSE_TAIL_PITCH,
    POSE_TAIL_YAW,
    POSE_UPPER,
    POSE_X,
    POSE_Y,
    POSE_Z,
    PRIOR_FIELDS,
    PRIOR_FILE,
    TAIL,
    TAIL_SEGMENTS,
    BodyState,
    FloatArray,
    J,
    MouseShape,
    Pose,
    PosePrior,
    forward_kinematics,
    wrap_angle,
)
from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.synth.body import sample_shape

#: Bout durations drawn by :func:`generate_sequence`, seconds.
BOUT_SECONDS: Final[tuple[float, float]] = (0.5, 3.0)
#: Smallest arena side the generators keep a mouse inside, metres.
MIN_ARENA_SIDE: Final = 0.25


@dataclass(frozen=True)
class Arena:
    """A box arena centred on the origin.

    Attributes
    ----------
    size:
        Inner x, y extent, metres; the walls are the planes x = +-size[0]/2 and
        y = +-size[1]/2, the floor is z = 0.
    wall_height:
        Height of the walls, metres.
    """

    size: tuple[float, float] = (0.45, 0.45)
    wall_height: float = 0.30

    @property
    def half(self) -> FloatArray:
        """(2,) half extents in x and y, metres."""
        return np.array([0.5 * self.size[0], 0.5 * self.size[1]])


@dataclass(frozen=True)
class Sequence:
    """A labelled pose sequence.

    Attributes
    ----------
    poses:
        One :class:`~mouse_lifter_ros.core.body.Pose` per frame.
    labels:
        The fine behaviour (one of :data:`BEHAVIORS`) of each frame.
    fps:
        Frames per second.
    """

    poses: list[Pose]
    labels: list[str]
    fps: float

    def __len__(self) -> int:
        return len(self.poses)

    @property
    def times(self) -> FloatArray:
        """(N,) time of each frame, seconds from 0."""
        return np.arange(len(self.poses), dtype=np.float64) / self.fps

    def vectors(self) -> FloatArray:
        """(N, 43) :meth:`~mouse_lifter_ros.core.body.Pose.to_vector` of every frame."""
        return np.array([p.to_vector() for p in self.poses]).reshape(-1, Pose.SIZE)

    def states(self, shape: MouseShape) -> list[BodyState]:
        """Forward kinematics of every frame for ``shape``."""
        return [forward_kinematics(shape, p) for p in self.poses]


_RAISED: Final = ("rear", "rear_wall", "groom")  # behaviours with the front body raised

# ---------------------------------------------------------------------------------------
# Small geometry helpers.

_PAW_PHASE = np.array([0.0, 0.5, 0.5, 0.0])  # LF, RF, LH, RH: diagonal couplets
_SWING_SPEED = 0.5  # average paw speed of a swing at most, m/s (a swing lasts longer)
_FORELIMB_REACH = 0.027  # shoulder to forepaw at full stretch, scale 1 (body.py: 12 + 15 mm)
_TAIL_JOINTS = np.array([J[n] for n in TAIL])
_FRONT_JOINTS = np.array([J[n] for n in ("nose", "left_ear", "right_ear", "head", "neck")])


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _swing_profile(x: float) -> float:
    """Horizontal progress of a swing: linear (paws leave and land at full speed)."""
    return min(max(x, 0.0), 1.0)


def _rot(h: float) -> FloatArray:
    c, s = math.cos(h), math.sin(h)
    return np.array([[c, -s], [s, c]])


def _art(z: float, pitch_abs: abc.Sequence[float] | FloatArray,
         yaw: abc.Sequence[float] | FloatArray | None = None, roll: float = 0.0,
         tail_pitch: abc.Sequence[float] | FloatArray | None = None,
         tail_yaw: abc.Sequence[float] | FloatArray | None = None) -> FloatArray:
    """(43,) posture vector: ``pitch_abs`` are absolute segment pitches (rad)."""
    v = np.zeros(Pose.SIZE)
    v[POSE_Z] = z
    v[POSE_SPINE_PITCH] = np.diff(np.concatenate([[0.0], np.asarray(pitch_abs, dtype=np.float64)]))
    if yaw is not None:
        v[POSE_SPINE_YAW] = yaw
    v[POSE_HEAD_ROLL] = roll
    if tail_pitch is not None:
        v[POSE_TAIL_PITCH] = tail_pitch
    if tail_yaw is not None:
        v[POSE_TAIL_YAW] = tail_yaw
    return v


def _local(shape: MouseShape, art: FloatArray) -> BodyState:
    """Forward kinematics of a posture with the root at the origin, heading 0.

    Joint positions are then in the heading frame (paws at the default spots).
    """
    v = art.copy()
    v[[POSE_X, POSE_Y, POSE_HEADING]] = 0.0
    v[POSE_PAWS] = Pose().paws.ravel() * shape.scale
    return forward_kinematics(shape, Pose.from_vector(v))


def _height(shape: MouseShape, base: float) -> float:
    """Tail base height for a posture: ``base`` metres for a standard mouse, >= 8.5 mm."""
    return max(base * shape.scale * (0.5 + 0.5 * shape.girth), 0.0085)


def _floor_z(shape: MouseShape) -> float:
    """Height of a paw joint standing on the floor (its vertical radius), metres."""
    return 0.0018 * shape.scale + 0.0003


def _nominal(shape: MouseShape, art: FloatArray, fore_dx: float = -0.002,
             hind_dx: float = 0.003) -> FloatArray:
    """(4, 2) heading-frame floor spots of the paws under shoulders and hips."""
    st = _local(shape, art)
    s = shape.scale
    out = np.zeros((4, 2))
    for i, (name, dx, dy) in enumerate((("left_shoulder", fore_dx, 0.011),
                                        ("right_shoulder", fore_dx, -0.011),
                                        ("left_hip", hind_dx, 0.015),
                                        ("right_hip", hind_dx, -0.015))):
        out[i] = [st.joint(name)[0] + dx * s, dy * s]
    return out


@dataclass
class _Root:
    x: float
    y: float
    h: float
    phase: float = 0.0  # gait clock, cycles

    @property
    def p(self) -> FloatArray:
        return np.array([self.x, self.y])

    @property
    def forward(self) -> FloatArray:
        return np.array([math.cos(self.h), math.sin(self.h)])


def _advance(root: _Root, v: float, lat: float, omega: float, dt: float) -> _Root:
    """The root after ``dt`` seconds at forward ``v``, sideways ``lat`` (m/s), ``omega``."""
    hm = root.h + 0.5 * omega * dt
    c, s = math.cos(hm), math.sin(hm)
    return _Root(root.x + dt * (v * c - lat * s), root.y + dt * (v * s + lat * c),
                 root.h + omega * dt, root.phase)


@dataclass
class _Cmd:
    """What a behaviour asks for in one frame."""

    art: FloatArray  # (43,) posture; x, y, heading and paw entries unused
    nominal: FloatArray  # (4, 2) heading-frame floor spots of the paws
    label: str
    v: float = 0.0  # forward speed, m/s
    lat: float = 0.0  # sideways speed (left), m/s
    omega: float = 0.0  # yaw rate, rad/s
    gait: float = 0.0  # 1 stepping, 0 standing
    freq: float = 4.5  # stride frequency, Hz
    duty: float = 0.6  # stance fraction of a stride
    lift: float = 0.005  # swing height, m
    posed_w: FloatArray = field(default_factory=lambda: np.zeros(4))  # (4,) 0..1
    posed: FloatArray = field(default_factory=lambda: np.zeros((4, 3)))  # heading frame


def _blend(a: _Cmd, b: _Cmd, w: float) -> _Cmd:
    """``a`` crossfaded into ``b`` by weight ``w`` of ``b``."""
    def mix(x: float, y: float) -> float:
        return (1.0 - w) * x + w * y

    wa, wb = (1.0 - w) * a.posed_w, w * b.posed_w
    total = wa + wb
    posed = np.where(total[:, None] > 1e-12,
                     (wa[:, None] * a.posed + wb[:, None] * b.posed)
                     / np.maximum(total, 1e-12)[:, None], b.posed)
    return _Cmd(art=(1.0 - w) * a.art + w * b.art,
                nominal=(1.0 - w) * a.nominal + w * b.nominal,
                label=b.label if w >= 0.5 else a.label,
                v=mix(a.v, b.v), lat=mix(a.lat, b.lat), omega=mix(a.omega, b.omega),
                gait=mix(a.gait, b.gait), freq=mix(a.freq, b.freq),
                duty=mix(a.duty, b.duty), lift=mix(a.lift, b.lift),
                posed_w=total, posed=posed)


def _inside(arena: Arena, p: FloatArray, margin: float) -> bool:
    return bool(np.all(np.abs(p) <= arena.half - margin))


# ---------------------------------------------------------------------------------------
# Behaviours.


class _Behavior:
    """One bout: a controller giving a :class:`_Cmd` per frame.

    ``command(t, root)`` is called once per frame with the bout time ``t`` (s, from
    the bout's first frame, increasing) and the root at the previous frame; it may be
    called after :meth:`finished` while the next bout fades in.
    """

    name = ""

    def __init__(self, rng: np.random.Generator, shape: MouseShape, arena: Arena,
                 duration: float, dt: float) -> None:
        self.shape, self.arena, self.duration, self.dt = shape, arena, duration, dt
        self.s = shape.scale

    def finished(self, t: float) -> bool:
        return t >= self.duration - 1e-9

    def command(self, t: float, root: _Root) -> _Cmd:
        raise NotImplementedError

    def still(self, t: float, root: _Root) -> _Cmd:
        """The command at ``t`` for a still pose (no steering history)."""
        return self.command(t, root)


def _osc(rng: np.random.Generator, lo: float, hi: float) -> tuple[float, float]:
    """A frequency (Hz) drawn in [lo, hi] and a phase (rad)."""
    return float(rng.uniform(lo, hi)), float(rng.uniform(0.0, 2.0 * math.pi))


def _sin(osc: tuple[float, float], t: float) -> float:
    return math.sin(2.0 * math.pi * osc[0] * t + osc[1])


_MAX_YAW_ACCEL = 30.0  # rad/s^2
_PIVOT = 0.03  # turning on the spot rotates about this point in front of the tail base, m
_WALK_PITCH = np.array([0.35, 0.15, 0.0, -0.15, -0.5])
_TROT_PITCH = np.array([0.25, 0.10, 0.0, -0.05, -0.35])
_WALK_TAIL_PITCH = np.array([0.45, -0.15, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0])


def _walk_art(shape: MouseShape, head: float = 0.0, trot: bool = False) -> FloatArray:
    pitch = (_TROT_PITCH if trot else _WALK_PITCH) + np.array([0, 0, 0, 0.5, 1.0]) * head
    return _art(_height(shape, 0.014 if trot else 0.013), pitch,
                tail_pitch=_WALK_TAIL_PITCH)


def _wall_danger(arena: Arena, shape: MouseShape, root: _Root, v: float) -> float:
    """0..1: how far a point ahead of the nose is into the 2-6 cm band along the walls."""
    ahead = root.p + root.forward * (0.095 * shape.scale + 0.02 + 0.3 * abs(v))
    pen = float(np.max(np.abs(ahead) - (arena.half - 0.06)))
    return min(max(pen / 0.04, 0.0), 1.0)


class _YawRate:
    """A yaw rate following its target with a bounded angular acceleration."""

    def __init__(self, dt: float, omega: float = 0.0) -> None:
        self.dt, self.omega, self.t_last = dt, omega, -math.inf

    def follow(self, t: float, target: float) -> float:
        """The yaw rate (rad/s) at bout time ``t`` (updated once per time)."""
        if t > self.t_last:
            self.t_last = t
            step = _MAX_YAW_ACCEL * self.dt
            self.omega += min(max(target - self.omega, -step), step)
        return self.omega


class _Walk(_Behavior):
    """Walking (8-15 cm/s, 4-5 Hz strides) or trotting (20-35 cm/s, 6-8 Hz)."""

    def __init__(self, rng: np.random.Generator, shape: MouseShape, arena: Arena,
                 duration: float, dt: float, *, trot: bool = False) -> None:
        super().__init__(rng, shape, arena, duration, dt)
        self.trot = trot
        self.name = "trot" if trot else "walk"
        self.v_lo, self.v_hi = (0.20, 0.35) if trot else (0.08, 0.15)
        self.v0 = float(rng.uniform(self.v_lo, self.v_hi))
        self.v_amp = float(rng.uniform(0.0, 0.3)) * (self.v_hi - self.v_lo)
        self.v_osc = _osc(rng, 0.2, 0.6)
        self.w1, self.w1_osc = float(rng.uniform(0.0, 0.8)), _osc(rng, 0.1, 0.4)
        self.w2, self.w2_osc = float(rng.uniform(0.0, 0.4)), _osc(rng, 0.4, 1.0)
        self.head = float(rng.uniform(-0.05, 0.15) if trot else rng.uniform(-0.1, 0.3))
        self.lift = float(rng.uniform(0.005, 0.007) if trot else rng.uniform(0.004, 0.006))
        self.duty = 0.42 if trot else 0.62
        self.roll = float(rng.uniform(-0.05, 0.05))
        self.base = _walk_art(shape, self.head, trot)
        self.nominal = _nominal(shape, self.base)
        self.sign = 0.0  # steering direction kept while near a wall
        self.yaw = _YawRate(dt, self.wander(0.0))

    def speed(self, t: float) -> float:
        return min(max(self.v0 + self.v_amp * _sin(self.v_osc, t), self.v_lo), self.v_hi)

    def freq(self, v: float) -> float:
        if self.trot:
            return 6.0 + 2.0 * min(max((v - 0.20) / 0.15, 0.0), 1.0)
        return 4.0 + min(max((v - 0.08) / 0.07, 0.0), 1.0)

    def command(self, t: float, root: _Root) -> _Cmd:
        v = self.speed(t)
        omega = self.wander(t)
        danger = _wall_danger(self.arena, self.shape, root, v)
        if danger > 0.0:
            err = wrap_angle(math.atan2(-root.y, -root.x) - root.h)
            if self.sign != 0.0 and abs(err) > 1.5:
                err = self.sign * abs(err)  # keep turning the way it started
            self.sign = 1.0 if err >= 0.0 else -1.0
            top = 2.5 if self.trot else 3.5
            omega = (1.0 - danger) * omega + danger * min(max(5.0 * err, -top), top)
            v *= 1.0 - 0.85 * danger
        elif abs(wrap_angle(math.atan2(-root.y, -root.x) - root.h)) < 1.5:
            self.sign = 0.0  # facing the open arena again
        return self._cmd(v, self.yaw.follow(t, omega), root.phase)

    def wander(self, t: float) -> float:
        """Yaw rate (rad/s) of the bout's random meandering."""
        return self.w1 * _sin(self.w1_osc, t) + self.w2 * _sin(self.w2_osc, t)

    def _cmd(self, v: float, omega: float, phase: float) -> _Cmd:
        art = self.base.copy()
        c = 2.0 * math.pi * phase
        bend = min(max(0.06 * omega, -0.2), 0.2)  # curve into the turn
        art[POSE_SPINE_YAW] += np.array([0.0, 1.0, 1.0, 1.2, 1.2]) * bend
        art[POSE_SPINE_YAW] += np.array([0.0, 1.0, -1.0, 0.5, 0.0]) * 0.03 * math.sin(c)  # sway
        # head bob
        art[POSE_SPINE_PITCH] += np.array([0.0, 0.0, 0.0, 0.02, 0.03]) * math.sin(2.0 * c)
        art[POSE_Z] += 0.0005 * self.s * math.sin(2.0 * c)
        art[POSE_HEAD_ROLL] = self.roll + 0.03 * math.sin(c)
        art[POSE_TAIL_YAW] += np.linspace(0.06, 0.02, TAIL_SEGMENTS) * math.sin(c)
        slow = 1.0 - min(v / 0.08, 1.0)  # turning on the spot pivots about mid-body
        return _Cmd(art=art, nominal=self.nominal, label=self.name, v=v,
                    lat=-omega * _PIVOT * self.s * slow, omega=omega, gait=1.0,
                    freq=self.freq(v) + 0.4 * abs(omega), duty=self.duty,
                    lift=self.lift * self.s)

    def still(self, t: float, root: _Root) -> _Cmd:
        return self._cmd(self.speed(t), self.wander(t), root.phase)


class _Turn(_Behavior):
    """Turning on the spot: 90-180 deg/s, slow forward, spine curved into the turn."""

    name = "turn"

    def __init__(self, rng: np.random.Generator, shape: MouseShape, arena: Arena,
                 duration: float, dt: float) -> None:
        super().__init__(rng, shape, arena, duration, dt)
        self.rate = math.radians(float(rng.uniform(90.0, 180.0)))
        self.sign = 1.0 if rng.random() < 0.5 else -1.0
        self.bend = float(rng.uniform(0.12, 0.22))
        self.v = float(rng.uniform(0.01, 0.04))
        self.head = float(rng.uniform(-0.1, 0.25))
        self.base = _walk_art(shape, self.head)
        self.nominal = _nominal(shape, self.base)
        self.curve = self.sign  # spine curvature direction, follows sign smoothly
        self.last_flip = -1.0
        self.t_last = -1.0

    def command(self, t: float, root: _Root) -> _Cmd:
        reach = 0.095 * self.s
        v = self.v
        if t > self.t_last:
            self.t_last = t
            ahead = root.h + self.sign * self.rate * 0.15
            nose = root.p + reach * np.array([math.cos(ahead), math.sin(ahead)])
            if not _inside(self.arena, nose, 0.015) and t - self.last_flip > 0.4:
                self.sign, self.last_flip = -self.sign, t
            step = self.dt / 0.25
            self.curve += min(max(self.sign - self.curve, -step), step)
        if not _inside(self.arena, root.p + root.forward * (reach + 0.03), 0.0):
            v = 0.0
        omega = self.sign * self.rate
        art = self.base.copy()
        art[POSE_SPINE_YAW] += np.array([0.0, 0.8, 1.0, 1.2, 1.2]) * self.bend * self.curve
        art[POSE_TAIL_YAW] += np.linspace(-0.15, 0.0, TAIL_SEGMENTS) * self.curve
        return _Cmd(art=art, nominal=self.nominal, label=self.name, v=v,
                    lat=-omega * _PIVOT * self.s, omega=omega, gait=1.0,
                    freq=4.5 + 0.4 * abs(omega), duty=0.62,
                    lift=0.004 * self.s)


def _rear_art(shape: MouseShape, p0: float, head_up: float, z: float) -> FloatArray:
    """Rearing posture: rump pitch ``p0``, front body at ``p0`` + 0.15 rad."""
    pitch = np.array([p0, p0 + 0.12, p0 + 0.15, p0 - 0.15 + head_up, p0 - 0.85 + head_up])
    return _art(z, pitch, tail_pitch=[0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])


def _solve_rear(shape: MouseShape, height: float, head_up: float, z: float) -> float:
    """Rump pitch giving a nose ``height`` m with the front body 45-80 deg up."""
    lo, hi = math.radians(45.0) - 0.15, math.radians(80.0) - 0.15
    for _ in range(22):
        mid = 0.5 * (lo + hi)
        if _local(shape, _rear_art(shape, mid, head_up, z)).joint("nose")[2] < height:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


class _Rear(_Behavior):
    """Free rearing: front body 45-80 deg up, nose at 6-10 cm, forepaws at the chest."""

    name = "rear"

    def __init__(self, rng: np.random.Generator, shape: MouseShape, arena: Arena,
                 duration: float, dt: float) -> None:
        super().__init__(rng, shape, arena, duration, dt)
        self.z = _height(shape, 0.008)
        self.head_up = float(rng.uniform(0.0, 0.3))
        self.p0 = _solve_rear(shape, float(rng.uniform(0.062, 0.098)), self.head_up, self.z)
        self.sway = _osc(rng, 0.4, 1.0)
        self.scan, self.scan_amp = _osc(rng, 0.3, 0.9), float(rng.uniform(0.05, 0.2))
        self.sniff = _osc(rng, 5.0, 10.0)
        self.base = _rear_art(shape, self.p0, self.head_up, self.z)
        self.nominal = _nominal(shape, self.base, hind_dx=0.004)

    def command(self, t: float, root: _Root) -> _Cmd:
        art = self.base.copy()
        art[POSE_SPINE_PITCH] += np.array([0.03 * _sin(self.sway, t), 0.0, 0.0, 0.0,
                                           0.03 * _sin(self.sniff, t)])
        art[POSE_SPINE_YAW] += (np.array([0.0, 0.0, 0.2, 0.4, 0.4]) * self.scan_amp
                                * _sin(self.scan, t))
        st = _local(self.shape, art)
        posed = np.zeros((4, 3))
        frame = st.spine_frames[2]
        for i, (name, side) in enumerate((("left_shoulder", 1.0), ("right_shoulder", -1.0))):
            posed[i] = st.joint(name) + frame @ (np.array([0.004, -0.001 * side, -0.015])
                                                 * self.s)
        return _Cmd(art=art, nominal=self.nominal, label=self.name,
                    posed_w=np.array([1.0, 1.0, 0.0, 0.0]), posed=posed)


def _reachable(shoulder: FloatArray, target: FloatArray, reach: float) -> FloatArray:
    d = target - shoulder
    n = float(np.linalg.norm(d))
    return target if n <= reach else shoulder + d * (reach / n)


class _Groom(_Behavior):
    """Face grooming: sitting up 30-50 deg, head down, forepaws cycling at the face."""

    name = "groom"

    def __init__(self, rng: np.random.Generator, shape: MouseShape, arena: Arena,
                 duration: float, dt: float) -> None:
        super().__init__(rng, shape, arena, duration, dt)
        self.p0 = float(rng.uniform(0.58, 0.92))  # front body = p0 - 0.05: 30-50 deg
        self.cycle = _osc(rng, 5.0, 8.0)
        self.bob = float(rng.uniform(0.04, 0.08))
        self.radius = float(rng.uniform(0.002, 0.004)) * self.s
        self.z = _height(shape, 0.009)
        self.base = self._pose(0.0)
        self.nominal = _nominal(shape, self.base, hind_dx=0.006)

    def _pose(self, bob: float) -> FloatArray:
        p0 = self.p0
        pitch = np.array([p0, p0 + 0.05, p0 - 0.05, p0 - 1.0 + 0.5 * bob, p0 - 1.9 + bob])
        return _art(self.z, pitch, tail_pitch=[0.3, 0, 0, 0, 0, 0, 0, 0])

    def command(self, t: float, root: _Root) -> _Cmd:
        c = _sin(self.cycle, t)
        art = self._pose(self.bob * c)
        st = _local(self.shape, art)
        head = st.spine_frames[4]
        ph = 2.0 * math.pi * self.cycle[0] * t + self.cycle[1]
        posed = np.zeros((4, 3))
        reach = 0.9 * _FORELIMB_REACH * self.s
        for i, (name, side) in enumerate((("left_shoulder", 1.0), ("right_shoulder", -1.0))):
            off = np.array([-0.004, 0.005 * side, -0.006]) * self.s + self.radius \
                * np.array([math.cos(ph), 0.0, math.sin(ph)])
            posed[i] = _reachable(st.joint(name), st.joint("nose") + head @ off, reach)
        return _Cmd(art=art, nominal=self.nominal, label=self.name,
                    posed_w=np.array([1.0, 1.0, 0.0, 0.0]), posed=posed)


_SNIFF_PITCH = np.array([0.38, 0.15, 0.0, -0.05, -0.30])
# Sniffing the floor: neck bent down, the muzzle nearly vertical, the nose just above
# the floor. From above the head then looks short (snout to ears ~8% of the body), as in
# most labelled frames of the DeepLabCut openfield example.
_FLOOR_SNIFF_PITCH = np.array([0.42, 0.25, 0.10, -0.45, -0.95])


class _Sniff(_Behavior):
    """Standing and sniffing, nose twitching 5-10 Hz: half the bouts with the neck
    stretched and the head sweeping sideways and up, half with the nose down at the
    floor, sweeping sideways and dipping."""

    name = "sniff"

    def __init__(self, rng: np.random.Generator, shape: MouseShape, arena: Arena,
                 duration: float, dt: float) -> None:
        super().__init__(rng, shape, arena, duration, dt)
        self.sweep, self.sweep_amp = _osc(rng, 0.5, 1.5), float(rng.uniform(0.25, 0.5))
        self.up, self.up_amp = _osc(rng, 0.2, 0.6), float(rng.uniform(0.1, 0.4))
        self.twitch = _osc(rng, 5.0, 10.0)
        self.z = _height(shape, 0.013)
        self.floor = bool(rng.random() < 0.5)
        pitch = _FLOOR_SNIFF_PITCH if self.floor else _SNIFF_PITCH
        self.base = _art(self.z, pitch, tail_pitch=_WALK_TAIL_PITCH)
        self.nominal = _nominal(shape, _walk_art(shape))

    def command(self, t: float, root: _Root) -> _Cmd:
        art = self.base.copy()
        sw = self.sweep_amp * _sin(self.sweep, t)
        up = self.up_amp * (0.5 + 0.5 * _sin(self.up, t))
        if self.floor:  # dip the neck a little instead of raising the head
            up = -0.15 * up
        art[POSE_SPINE_YAW] += np.array([0.0, 0.0, 0.15, 0.45, 0.4]) * sw
        art[POSE_SPINE_PITCH] += np.array([0.0, 0.0, 0.0, up, 0.03 * _sin(self.twitch, t)])
        art[POSE_HEAD_ROLL] = 0.15 * sw
        return _Cmd(art=art, nominal=self.nominal, label=self.name)


_REST_PITCH = np.array([0.6, 0.3, -0.1, -0.55, -0.72])
_REST_TAIL = np.array([0.6, 0.55, 0.5, 0.45, 0.35, 0.25, 0.15, 0.1])


class _Rest(_Behavior):
    """Resting curled up: hunched, head tucked, tail wrapped, breathing 2-3 Hz."""

    name = "rest"

    def __init__(self, rng: np.random.Generator, shape: MouseShape, arena: Arena,
                 duration: float, dt: float) -> None:
        super().__init__(rng, shape, arena, duration, dt)
        side = 1.0 if rng.random() < 0.5 else -1.0
        curl = side * float(rng.uniform(0.08, 0.16))
        self.breath = _osc(rng, 2.0, 3.0)
        self.z = _height(shape, 0.010)
        self.base = _art(self.z, _REST_PITCH, yaw=[0.0, curl, curl, curl, curl],
                         roll=0.1 * side, tail_yaw=side * _REST_TAIL)
        self.nominal = _nominal(shape, self.base, fore_dx=-0.004)

    def command(self, t: float, root: _Root) -> _Cmd:
        art = self.base.copy()
        b = _sin(self.breath, t)
        art[POSE_SPINE_PITCH] += np.array([0.0, 0.012, -0.008, 0.0, 0.0]) * b
        art[POSE_Z] += 0.0003 * self.s * b
        return _Cmd(art=art, nominal=self.nominal, label=self.name)


def _rear_wall_art(shape: MouseShape, p0: float, z: float) -> FloatArray:
    pitch = np.array([p0, p0 + 0.10, p0 + 0.15, p0 + 0.05, p0 - 0.45])
    return _art(z, pitch, tail_pitch=[0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])


def _nearest_wall(arena: Arena, p: FloatArray) -> tuple[FloatArray, float]:
    """Outward unit normal of the wall nearest ``p`` and the wall's offset along it."""
    gaps = [arena.half[0] - p[0], arena.half[0] + p[0], arena.half[1] - p[1],
            arena.half[1] + p[1]]
    k = int(np.argmin(gaps))
    n = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]][k])
    return n, float(arena.half[k // 2])


class _RearWall(_Behavior):
    """Walk to the nearest wall, face it, rear with the forepaws on it at 4-8 cm."""

    name = "rear_wall"

    def __init__(self, rng: np.random.Generator, shape: MouseShape, arena: Arena,
                 duration: float, dt: float) -> None:
        super().__init__(rng, shape, arena, duration, dt)
        s = self.s
        self.z = _height(shape, 0.008)
        self.p0 = float(rng.uniform(0.85, 1.15))
        self.rear = _rear_wall_art(shape, self.p0, self.z)
        self.walk = _walk_art(shape)
        self.nominal = _nominal(shape, self.walk)
        self.rear_nominal = _nominal(shape, self.rear, hind_dx=0.004)
        self.v_walk = float(rng.uniform(0.08, 0.13))
        self.rise = float(rng.uniform(0.35, 0.5))
        self.fall = float(rng.uniform(0.35, 0.45))
        self.duration = max(duration, self.rise + self.fall + 0.2)
        self.pat = _osc(rng, 0.5, 1.5)
        self.paw_r = 0.0022 * s
        # Standing spot: nose 12 mm from the wall. Reared: the tail base steps in so the
        # forepaws reach the wall at 4-8 cm; nothing in front may pass the wall.
        walk_st = _local(shape, self.walk)
        self.d_stand = float(np.max(walk_st.joints[_FRONT_JOINTS, 0])) + 0.012 * s
        st = _local(shape, self.rear)
        shoulder = st.joint("left_shoulder")
        self.paw_z = float(np.clip(shoulder[2] + rng.uniform(-0.004, 0.010), 0.045, 0.075))
        self.paw_y = 0.009 * s
        reach = 0.85 * _FORELIMB_REACH * s
        dz, dy = self.paw_z - shoulder[2], self.paw_y - shoulder[1]
        gap = math.sqrt(max(reach * reach - dz * dz - dy * dy, 0.0))
        front = float(np.max(st.joints[_FRONT_JOINTS, 0])) + 0.006 * s
        self.d_rear = max(front, shoulder[0] + self.paw_r + min(gap, 0.012 * s))
        # Distance profile of the rise: never lets the front pass the wall.
        grid = np.linspace(0.0, 1.0, 11)
        need = [float(np.max(_local(shape, (1 - g) * self.walk + g * self.rear)
                             .joints[_FRONT_JOINTS, 0])) + 0.006 * s for g in grid]
        self.d_grid = np.maximum(np.asarray(need), self.d_stand
                                 + (self.d_rear - self.d_stand) * grid)
        self.wall: tuple[FloatArray, float] | None = None
        self.spot = np.zeros(2)
        self.t_reach: float | None = None
        self.stage = 0
        self.yaw = _YawRate(dt)

    def _choose_wall(self, root: _Root) -> None:
        n, off = _nearest_wall(self.arena, root.p)
        along = np.array([-n[1], n[0]])
        lim = float(abs(self.arena.half @ along)) - 0.09 * self.s
        a = float(np.clip(root.p @ along, -lim, lim))
        self.wall = (n, off)
        self.spot = n * (off - self.d_stand) + along * a

    def finished(self, t: float) -> bool:
        return self.t_reach is not None and t >= self.t_reach + self.duration - 1e-9

    def _on_wall(self, t: float, root: _Root, g: float, u: float, d_wall: float) -> _Cmd:
        """Command at rise fraction ``g`` (posture), paw weight ``u``, root ``d_wall``."""
        assert self.wall is not None
        n, off = self.wall
        art = (1.0 - g) * self.walk + g * self.rear
        art[POSE_SPINE_YAW] += np.array([0.0, 0.0, 0.0, 0.15, 0.15]) * 0.1 * g * _sin(self.pat, t)
        # Forward speed that puts the tail base d_wall from the wall this frame.
        fwd = root.forward
        cos_e = max(float(fwd @ n), 0.3)
        v = ((off - d_wall) - float(root.p @ n)) / self.dt / cos_e
        v = min(max(v, -0.25), 0.25)
        nxt = _advance(root, v, 0.0, 0.0, self.dt)
        posed = np.zeros((4, 3))
        rot = _rot(nxt.h)
        for i, side in ((0, 1.0), (1, -1.0)):
            lateral = rot @ np.array([0.0, side * self.paw_y])
            x = (off - self.paw_r - float(nxt.p @ n) - float(lateral @ n)) / max(
                float(nxt.forward @ n), 0.3)
            dz = 0.003 * self.s * _sin(self.pat, t) * side
            posed[i] = [x, side * self.paw_y, self.paw_z + dz]
        nominal = (1.0 - g) * self.nominal + g * self.rear_nominal
        return _Cmd(art=art, nominal=nominal, label=self.name, v=v,
                    posed_w=np.array([u, u, 0.0, 0.0]), posed=posed)

    def command(self, t: float, root: _Root) -> _Cmd:
        if self.wall is None:
            self._choose_wall(root)
        if self.t_reach is None:
            cmd = self._approach(t, root)
            if cmd is not None:
                return cmd
            self.t_reach = t
        tr = t - self.t_reach
        end = self.duration
        if tr < self.rise:
            g = _smoothstep(tr / self.rise)
        elif tr > end - self.fall:
            g = _smoothstep((end - tr) / self.fall)
        else:
            g = 1.0
        d = float(np.interp(g, np.linspace(0.0, 1.0, 11), self.d_grid))
        cmd = self._on_wall(t, root, g, g, d)
        if 0.0 < tr < self.rise or end - self.fall < tr < end:  # step in or back
            cmd.gait, cmd.freq, cmd.duty, cmd.lift = 1.0, 4.0, 0.5, 0.004 * self.s
        return cmd

    def _approach(self, t: float, root: _Root) -> _Cmd | None:
        """Walking to the standing spot, facing the wall, stepping to the exact distance.

        Stages: 0 walk towards the spot until within 3 cm; 1 turn on the spot to face
        the wall; 2 walk straight until the tail base is ``d_stand`` from the wall.
        Returns None when there (or after 8 s, wherever it is).
        """
        assert self.wall is not None
        n, off = self.wall
        walk = _Cmd(art=self.walk.copy(), nominal=self.nominal, label="walk", gait=1.0,
                    freq=4.3, duty=0.62, lift=0.005 * self.s)
        if t >= 8.0:
            return None
        if self.stage == 0:
            d = self.spot - root.p
            dist = float(np.linalg.norm(d))
            if dist > 0.03:
                err = wrap_angle(math.atan2(d[1], d[0]) - root.h)
                walk.omega = self.yaw.follow(t, min(max(6.0 * err, -2.5), 2.5))
                walk.v = self.v_walk * max(math.cos(err), 0.0) ** 3 * min(dist / 0.06, 1.0)
            else:
                self.stage = 1
        err = wrap_angle(math.atan2(n[1], n[0]) - root.h)
        if self.stage == 1:
            if abs(err) > 0.03 or abs(self.yaw.omega) > 0.3:
                walk.omega = self.yaw.follow(t, min(max(5.0 * err, -2.5), 2.5))
                walk.gait = 1.0 if abs(walk.omega) > 0.2 else 0.0
            else:
                self.stage = 2
        if self.stage == 2:
            depth = (off - self.d_stand) - float(root.p @ n)  # still to go along n
            if abs(depth) < 0.0015:
                return None
            walk.omega = self.yaw.follow(t, min(max(5.0 * err, -1.0), 1.0))
            walk.v = min(max(depth / self.dt, -0.04), min(self.v_walk, 2.0 * abs(depth) + 0.01))
            walk.v /= max(math.cos(err), 0.5)
        walk.freq += 0.4 * abs(walk.omega)
        bend = min(max(0.06 * walk.omega, -0.2), 0.2)
        walk.art[POSE_SPINE_YAW] += np.array([0.0, 1.0, 1.0, 1.2, 1.2]) * bend
        return walk

    def place(self, rng: np.random.Generator) -> _Root:
        """A root on the wall (for still poses): faces a random wall, reared."""
        k = int(rng.integers(4))
        n = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]][k])
        off = float(self.arena.half[k // 2])
        along = np.array([-n[1], n[0]])
        lim = float(abs(self.arena.half @ along)) - 0.09 * self.s
        a = float(rng.uniform(-lim, lim))
        h = math.atan2(n[1], n[0]) + float(rng.normal(0.0, 0.04))
        p = n * (off - self.d_rear) + along * a
        self.wall, self.t_reach = (n, off), 0.0
        return _Root(float(p[0]), float(p[1]), h)

    def still(self, t: float, root: _Root) -> _Cmd:
        return self._on_wall(t, root, 1.0, 1.0, self.d_rear)


def _make(name: str, rng: np.random.Generator, shape: MouseShape, arena: Arena,
          duration: float, dt: float) -> _Behavior:
    if name in ("walk", "trot"):
        return _Walk(rng, shape, arena, duration, dt, trot=name == "trot")
    kinds: dict[str, type[_Behavior]] = {
        "turn": _Turn, "rear": _Rear, "rear_wall": _RearWall, "groom": _Groom,
        "sniff": _Sniff, "rest": _Rest}
    return kinds[name](rng, shape, arena, duration, dt)


# ---------------------------------------------------------------------------------------
# The simulation shared by all behaviours.


def _compose(cmd: _Cmd, root: _Root, floor_paws: FloatArray,
             tail_yaw: FloatArray | None) -> FloatArray:
    """(43,) pose vector from a command, the root and heading-frame floor paws (4, 3)."""
    v = cmd.art.copy()
    v[POSE_X], v[POSE_Y], v[POSE_HEADING] = root.x, root.y, root.h
    u = np.clip(cmd.posed_w, 0.0, 1.0)[:, None]
    v[POSE_PAWS] = ((1.0 - u) * floor_paws + u * cmd.posed).ravel()
    if tail_yaw is not None:
        v[POSE_TAIL_YAW] = tail_yaw
    return np.clip(v, POSE_LOWER, POSE_UPPER)


class _Sim:
    """Root, gait clock, planted and swinging paws, dragged tail."""

    def __init__(self, shape: MouseShape, arena: Arena, dt: float, start: _Root) -> None:
        self.shape, self.arena, self.dt = shape, arena, dt
        self.root = start
        self.floor = _floor_z(shape)
        self.world = np.zeros((4, 3))  # paw positions in the arena
        self.swing = np.zeros(4, dtype=bool)
        self.tau = np.zeros(4)
        self.dur = np.ones(4)
        self.lift = np.zeros(4)
        self.src = np.zeros((4, 3))
        self.dst = np.zeros((4, 3))
        self.tail: FloatArray | None = None  # (9, 3) tail joints of the last frame
        self.tail_side = np.zeros(TAIL_SEGMENTS)  # way each segment turned from a wall
        self.started = False
        self.alpha = 1.0 - np.exp(-dt / np.linspace(0.2, 0.8, TAIL_SEGMENTS))
        self.root_margin = 0.02 * shape.scale
        self.s = shape.scale
        self.is_tail = np.isin(np.arange(len(JOINTS)), _TAIL_JOINTS[1:])
        sc = shape.scale  # a paw this close to its shoulder or hip folds the limb over
        self.clearance = (("left_shoulder", 0.0055 * sc), ("right_shoulder", 0.0055 * sc),
                          ("left_hip", 0.010 * sc), ("right_hip", 0.010 * sc))

    def _to_world(self, root: _Root, xy: FloatArray) -> FloatArray:
        return root.p + _rot(root.h) @ xy

    def _heading_paws(self, root: _Root) -> FloatArray:
        out = self.world.copy()
        out[:, :2] = (self.world[:, :2] - root.p) @ _rot(root.h)
        return out

    def _foothold(self, cmd: _Cmd, ahead: float, i: int) -> FloatArray:
        r = self.root
        n = max(1, int(ahead / 0.02))
        for _ in range(n):
            r = _advance(r, cmd.v, cmd.lat, cmd.omega, ahead / n)
        lim = self.arena.half - 0.004
        xy = np.clip(self._to_world(r, cmd.nominal[i]), -lim, lim)
        return np.array([xy[0], xy[1], self.floor])

    def _start_swing(self, i: int, dst: FloatArray, dur: float, lift: float) -> None:
        self.swing[i], self.tau[i], self.dur[i], self.lift[i] = True, 0.0, dur, lift
        self.src[i], self.dst[i] = self.world[i].copy(), dst

    def _paws(self, cmd: _Cmd, phase0: float, phase1: float) -> None:
        dt = self.dt
        for i in map(int, np.flatnonzero(self.swing)):
            self.tau[i] += dt / self.dur[i]
            if self.tau[i] >= 1.0:
                self.swing[i] = False
                self.world[i] = self.dst[i]
            else:
                s = _swing_profile(self.tau[i])
                self.world[i] = self.src[i] + (self.dst[i] - self.src[i]) * s
                self.world[i, 2] += self.lift[i] * math.sin(math.pi * self.tau[i])
        posed = cmd.posed_w > 0.05
        for i in map(int, np.flatnonzero(posed & ~self.swing)):  # held up: carried along
            self.world[i] = [*self._to_world(self.root, cmd.nominal[i]), self.floor]
        if cmd.gait > 0.5:
            here = self._heading_paws(self.root)[:, :2]
            for i in range(4):
                if self.swing[i] or posed[i]:
                    continue
                a, b = phase0 + _PAW_PHASE[i] - cmd.duty, phase1 + _PAW_PHASE[i] - cmd.duty
                # A paw lifts when its phase says so, or early when left far from its
                # spot: out of reach, or (hind) under the body or far behind the hip,
                # where the model's knee folds over.
                dx, dy = (here[i] - cmd.nominal[i]) / self.s
                stretched = dx * dx + dy * dy > 0.022**2 or abs(dy) > 0.009 or (
                    i >= 2 and dx < -0.012)
                if math.floor(b) > math.floor(a) or stretched:
                    dur = (1.0 - cmd.duty) / cmd.freq
                    dst = self._foothold(cmd, dur + 0.5 * cmd.duty / cmd.freq, i)
                    dist = float(np.linalg.norm(dst[:2] - self.world[i, :2]))
                    dur = min(max(dur, dist / _SWING_SPEED), 0.8 / cmd.freq)
                    lift = cmd.lift * min(cmd.gait, 1.0) * (1.0 if i < 2 else 0.85)
                    self._start_swing(i, dst, dur, lift)
        elif not self.swing.any():
            want = np.array([self._to_world(self.root, cmd.nominal[i]) for i in range(4)])
            off = np.linalg.norm(self.world[:, :2] - want, axis=1)
            off[posed] = 0.0
            i = int(np.argmax(off))
            if off[i] > 0.015 * self.shape.scale:
                lim = self.arena.half - 0.004
                dst = np.array([*np.clip(want[i], -lim, lim), self.floor])
                dur = max(0.12, float(np.linalg.norm(dst[:2] - self.world[i, :2])) / _SWING_SPEED)
                self._start_swing(i, dst, dur, 0.004 * self.shape.scale)

    def _tail_yaw(self, cmd: _Cmd, root: _Root) -> FloatArray:
        """Relative tail yaws (8,): last frame's tail dragged behind the new root.

        Each segment first follows its front end (dragged along the floor, or pushed
        back along itself when the root moves backwards); the relative bends then relax
        towards the behaviour's tail shape (faster near the base); last, segments that
        would reach a wall turn away from it, leaving room to curl the rest of the tail.
        """
        rig0 = root.h + float(cmd.art[POSE_SPINE_YAW][0]) + math.pi  # straight back from the rump
        bends = cmd.art[POSE_TAIL_YAW]
        seg = self.shape.tail_segment
        lo, hi = POSE_LOWER[POSE_TAIL_YAW], POSE_UPPER[POSE_TAIL_YAW]
        if self.tail is None:
            rel = bends.copy()
        else:
            anchor = root.p
            dragged = np.zeros(TAIL_SEGMENTS)
            for k in range(TAIL_SEGMENTS):
                d = self.tail[k + 1, :2] - anchor
                old = self.tail[k + 1, :2] - self.tail[k, :2]  # its length on the floor
                if float(d @ old) < 0.5 * float(old @ old):  # pushed, not dragged
                    d = old
                dragged[k] = math.atan2(d[1], d[0])
                step = float(np.linalg.norm(old))
                anchor = anchor + step * np.array([math.cos(dragged[k]), math.sin(dragged[k])])
            rel = np.array([wrap_angle(float(r))
                            for r in np.diff(np.concatenate([[rig0], dragged]))])
            delta = (bends - rel) * self.alpha
            # The whole tail beyond a joint swings with its bend: keep the tip under
            # 0.3 m/s from the relaxing alone.
            sweep = float(np.sum(np.abs(delta) * seg * np.arange(TAIL_SEGMENTS, 0, -1)))
            rel += delta * min(1.0, 0.3 * self.dt / max(sweep, 1e-12))
        rel = np.clip(rel, 0.9 * lo, 0.9 * hi)
        lim = self.arena.half - 0.004
        walls = ((np.array([1.0, 0.0]), lim[0]), (np.array([-1.0, 0.0]), lim[0]),
                 (np.array([0.0, 1.0]), lim[1]), (np.array([0.0, -1.0]), lim[1]))
        anchor, prev_a = root.p, rig0
        out = np.zeros(TAIL_SEGMENTS)
        for k in range(TAIL_SEGMENTS):
            a = prev_a + float(rel[k])
            room = min(0.015 * self.s, 0.5 * seg * (TAIL_SEGMENTS - 1 - k))
            touched = False
            for _ in range(3):
                for n, limit in walls:
                    c = (limit - room - float(anchor @ n)) / seg
                    if c >= 1.0:
                        continue
                    theta = math.atan2(n[1], n[0])
                    need = math.acos(max(-1.0, c))
                    e = wrap_angle(a - theta)
                    if abs(e) < need:
                        side = self.tail_side[k] or (1.0 if e > 0.0 or (e == 0.0 and rel[k] >= 0)
                                                     else -1.0)
                        a = theta + side * need
                        self.tail_side[k], touched = side, True
            if not touched:
                self.tail_side[k] = 0.0  # free again: no side kept
            out[k] = min(max(wrap_angle(a - prev_a), float(lo[k])), float(hi[k]))
            prev_a += out[k]
            anchor = anchor + seg * np.array([math.cos(prev_a), math.sin(prev_a)])
        return out

    def _compose(self, cmd: _Cmd, root: _Root,
                 tail_yaw: FloatArray) -> tuple[FloatArray, BodyState]:
        """Pose vector and its FK; lifted paw targets kept clear of their limb roots."""
        vec = _compose(cmd, root, self._heading_paws(root), tail_yaw)
        state = forward_kinematics(self.shape, Pose.from_vector(vec))
        paws = vec[POSE_PAWS].reshape(4, 3)
        rot = _rot(root.h)
        moved = False
        for i, (limb_root, clear) in enumerate(self.clearance):
            rel = state.joint(limb_root) - np.array([root.x, root.y, 0.0])
            r = np.array([*(rel[:2] @ rot), rel[2]])  # limb root in the heading frame
            d = paws[i] - r
            if paws[i, 2] < self.floor + 3e-4:  # planted: only keep it out of IK's limit
                clear = min(clear, 0.007 * self.shape.scale)
            if float(d @ d) >= clear * clear:
                continue
            dz = float(d[2])
            horiz = math.sqrt(max(clear * clear - dz * dz, 0.0))
            dh = d[:2]
            n = float(np.linalg.norm(dh))
            direction = dh / n if n > 1e-9 else np.array([0.0, 1.0 if i % 2 == 0 else -1.0])
            paws[i, :2] = r[:2] + direction * horiz
            moved = True
        if moved:
            vec[POSE_PAWS] = np.clip(paws.ravel(), POSE_LOWER[POSE_PAWS], POSE_UPPER[POSE_PAWS])
            state = forward_kinematics(self.shape, Pose.from_vector(vec))
        return vec, state

    def step(self, cmd: _Cmd) -> FloatArray:
        """Advance one frame with ``cmd``; returns the (43,) pose vector."""
        # The first frame is at the start; each later one moves on by one step.
        dt = self.dt if self.started else 0.0
        root = _advance(self.root, cmd.v, cmd.lat, cmd.omega, dt)
        lim = self.arena.half - self.root_margin
        root.x, root.y = (float(c) for c in np.clip(root.p, -lim, lim))
        phase0 = self.root.phase
        root.phase = phase0 + (cmd.freq * dt if cmd.gait > 0.5 else 0.0)
        self.root = root
        if not self.started:
            self.started = True
            for i in range(4):
                self.world[i] = [*self._to_world(root, cmd.nominal[i]), self.floor]
        self._paws(cmd, phase0, root.phase)
        tail_yaw = self._tail_yaw(cmd, root)
        vec, state = self._compose(cmd, root, tail_yaw)
        for _ in range(3):  # last guard: shift the body if anything crosses a wall
            shift = self._wall_shift(state.joints[:, :2])
            if shift is None:
                break
            root.x, root.y = root.x + float(shift[0]), root.y + float(shift[1])
            vec, state = self._compose(cmd, root, tail_yaw)
        self.tail = state.joints[_TAIL_JOINTS].copy()
        return vec

    def _wall_shift(self, xy: FloatArray) -> FloatArray | None:
        """(2,) root shift that brings every joint (28, 2) inside the walls, or None.

        Body joints keep 2 mm from the walls; the tail, which curls away from them on its
        own, is only kept inside.
        """
        lim = np.where(self.is_tail[:, None], 0.0005, 0.002) - self.arena.half
        over = np.maximum(np.max(xy + lim, axis=0), 0.0)
        under = np.maximum(np.max(lim - xy, axis=0), 0.0)
        if not (over.any() or under.any()):
            return None
        return np.asarray(under - over)


# ---------------------------------------------------------------------------------------
# Public generators.


def _check(arena: Arena, fps: float | None = None, seconds: float | None = None,
           names: abc.Iterable[str] = ()) -> None:
    problems = []
    if min(arena.size) < MIN_ARENA_SIDE:
        problems.append(f"arena size {arena.size} m is too small; each side must be at "
                        f"least {MIN_ARENA_SIDE} m")
    if fps is not None and not (math.isfinite(fps) and fps > 0.0):
        problems.append(f"fps {fps} must be a positive number")
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0.0):
        problems.append(f"seconds {seconds} must be a positive number")
    unknown = [n for n in names if n not in BEHAVIORS]
    if unknown:
        problems.append(f"unknown behaviour(s) {', '.join(map(repr, unknown))}; allowed: "
                        f"{', '.join(BEHAVIORS)}")
    if problems:
        raise ParameterError("; ".join(problems))


def _random_start(rng: np.random.Generator, shape: MouseShape, arena: Arena) -> _Root:
    """A start well inside the arena: the tail base 11 cm (scaled) from every wall."""
    m = np.minimum(0.11 * shape.scale, arena.half - 0.02)
    p = rng.uniform(-(arena.half - m), arena.half - m)
    return _Root(float(p[0]), float(p[1]), float(rng.uniform(-math.pi, math.pi)))


def _fade(shape: MouseShape, a: _Cmd, b: _Cmd, least: float) -> float:
    """Crossfade time (s) from ``a`` to ``b``: ``least``, longer for big posture changes.

    The head and the held-up paws move at most ~25 cm/s on average (0.6 s at most).
    """
    sa, sb = _local(shape, a.art), _local(shape, b.art)
    far = float(np.max(np.linalg.norm(sa.joints[_FRONT_JOINTS] - sb.joints[_FRONT_JOINTS],
                                      axis=1)))
    paws = float(np.max(np.linalg.norm(a.posed - b.posed, axis=1)
                        * np.maximum(a.posed_w, b.posed_w)))
    return min(max(least, max(far, paws) / 0.25), 0.6)


def _run(next_bout: abc.Callable[[], _Behavior | None], shape: MouseShape, arena: Arena,
         fps: float, start: _Root, rng: np.random.Generator,
         n_frames: int | None) -> Sequence:
    dt = 1.0 / fps
    sim = _Sim(shape, arena, dt, start)
    cur = next_bout()
    if cur is None:
        return Sequence(poses=[], labels=[], fps=fps)
    cur_t0 = 0.0
    prev: _Behavior | None = None
    prev_t0 = fade = 0.0
    switch = 0.5
    poses: list[Pose] = []
    labels: list[str] = []
    k = 0
    while n_frames is None or k < n_frames:
        t = k * dt
        cmd = cur.command(t - cur_t0, sim.root)
        if prev is not None:
            w = (t - cur_t0 + dt) / fade
            if w < 1.0:
                old = prev.command(t - prev_t0, sim.root)
                label = cmd.label if w >= switch else old.label
                cmd = _blend(old, cmd, _smoothstep(w))
                cmd.label = label
            else:
                prev = None
        vec = sim.step(cmd)
        poses.append(Pose.from_vector(vec))
        labels.append(cmd.label)
        k += 1
        if cur.finished(t + dt - cur_t0):
            nxt = next_bout()
            if nxt is None:
                break
            prev, prev_t0, cur, cur_t0 = cur, cur_t0, nxt, k * dt
            old, new = prev.command(k * dt - prev_t0, sim.root), cur.command(0.0, sim.root)
            fade = _fade(shape, old, new, float(rng.uniform(0.25, 0.4)))
            fade = min(fade, max(0.5 * nxt.duration, 2 * dt))
            # Crossfade frames take the new label halfway, or early when sitting up into a
            # rear or grooming and late when coming down from one.
            switch = 0.5 + 0.35 * ((old.label in _RAISED) - (new.label in _RAISED))
    return Sequence(poses=poses, labels=labels, fps=fps)


def generate_sequence(rng: np.random.Generator, shape: MouseShape, *, seconds: float,
                      fps: float, arena: Arena = Arena(),
                      behaviors: abc.Sequence[str] | None = None) -> Sequence:
    """Random behaviour bouts, ``seconds`` long at ``fps`` (round(seconds * fps) frames).

    Bouts last :data:`BOUT_SECONDS` (0.5-3 s) each, behaviours are drawn uniformly from
    ``behaviors`` (default: all of :data:`BEHAVIORS`) without repeating one twice in a
    row, and consecutive bouts are crossfaded over 0.25-0.6 s. A ``rear_wall`` bout
    first walks to the nearest wall (those frames are labelled ``walk``, and do not
    count towards the bout's duration), and lasts at least its rise and descent (about
    1 s). The mouse starts at a random place at least 11 cm (scaled) from the walls,
    with a random heading. The last bout is cut at the end.

    Raises
    ------
    ParameterError
        Unknown behaviour names, an empty ``behaviors``, non-positive ``seconds`` or
        ``fps``, or an arena side under :data:`MIN_ARENA_SIDE`.
    """
    names = tuple(behaviors) if behaviors is not None else BEHAVIORS
    _check(arena, fps, seconds, names)
    if not names:
        raise ParameterError("behaviors is empty; give at least one of: "
                             + ", ".join(BEHAVIORS))
    n_frames = max(1, round(seconds * fps))
    last: list[str] = []

    def next_bout() -> _Behavior:
        choices = [n for n in names if not last or n != last[-1]] or list(names)
        name = choices[int(rng.integers(len(choices)))]
        last.append(name)
        return _make(name, rng, shape, arena, float(rng.uniform(*BOUT_SECONDS)), 1.0 / fps)

    return _run(next_bout, shape, arena, fps, _random_start(rng, shape, arena), rng,
                n_frames)


def script_sequence(script: abc.Sequence[tuple[str, float]], shape: MouseShape, *,
                    fps: float, arena: Arena = Arena(),
                    rng: np.random.Generator,
                    start: tuple[float, float, float] | None = None) -> Sequence:
    """The bouts of ``script`` in order, e.g. ``[("walk", 2.0), ("rear", 1.0)]``.

    Each bout lasts its duration (seconds; crossfades of 0.25-0.6 s, at most half the
    next bout, overlap the start of the next bout); a ``rear_wall`` bout first walks to
    the nearest wall, which adds the walking time, and lasts at least about 1 s.
    ``start`` is the tail base ``(x, y)`` (m) and heading (rad) of the first frame;
    default: a random place at least 11 cm from the walls. Parameters of each bout
    (speeds, rhythms, heights) are drawn from ``rng``.

    Raises
    ------
    ParameterError
        Unknown behaviours, non-positive durations or ``fps``, a start outside the
        arena, or an arena side under :data:`MIN_ARENA_SIDE`.
    """
    _check(arena, fps, names=[name for name, _ in script])
    bad = [f"{name} {secs!r}" for name, secs in script
           if not (math.isfinite(secs) and secs > 0.0)]
    if bad:
        raise ParameterError(f"script bout durations must be positive seconds: "
                             f"{', '.join(bad)}")
    if start is None:
        root = _random_start(rng, shape, arena)
    else:
        root = _Root(float(start[0]), float(start[1]), float(start[2]))
        if not _inside(arena, root.p, 0.02):
            raise ParameterError(f"start {start} is not inside the arena "
                                 f"(|x| <= {arena.half[0] - 0.02:.3f}, "
                                 f"|y| <= {arena.half[1] - 0.02:.3f} m)")
    queue = list(script)

    def next_bout() -> _Behavior | None:
        if not queue:
            return None
        name, secs = queue.pop(0)
        return _make(name, rng, shape, arena, float(secs), 1.0 / fps)

    return _run(next_bout, shape, arena, fps, root, rng, None)


def _gait_paws(cmd: _Cmd, phase: float, floor: float) -> FloatArray:
    """(4, 3) heading-frame paws of a steady gait at ``phase`` (cycles)."""
    out = np.zeros((4, 3))
    stride = cmd.v / cmd.freq
    for i in range(4):
        psi = (phase + _PAW_PHASE[i]) % 1.0
        out[i, :2] = cmd.nominal[i]
        out[i, 2] = floor
        if psi < cmd.duty:
            out[i, 0] += stride * (0.5 * cmd.duty - psi)
        else:
            tau = (psi - cmd.duty) / (1.0 - cmd.duty)
            out[i, 0] += stride * cmd.duty * (_swing_profile(tau) - 0.5)
            out[i, 2] += cmd.lift * math.sin(math.pi * tau)
    return out


def sample_pose(rng: np.random.Generator, shape: MouseShape, *,
                arena: Arena = Arena(),
                behavior: str | None = None) -> tuple[Pose, str]:
    """A random plausible still pose and its behaviour (the pose prior's sampler).

    The behaviour is ``behavior`` or drawn uniformly from :data:`BEHAVIORS`; the pose
    is a random moment of that behaviour (gaits at a random phase with the paws where a
    steady gait puts them, standing paws within ~5 mm of their spots, tail bends
    jittered) at a random place and heading where every joint is inside the walls
    (``rear_wall``: reared against a random wall, forepaws on it).

    Raises
    ------
    ParameterError
        An unknown ``behavior`` or an arena side under :data:`MIN_ARENA_SIDE`.
    """
    _check(arena, names=[behavior] if behavior is not None else [])
    name = behavior if behavior is not None else BEHAVIORS[int(rng.integers(len(BEHAVIORS)))]
    beh = _make(name, rng, shape, arena, 3.0, 1.0 / 30.0)
    t = float(rng.uniform(0.0, 3.0))
    floor = _floor_z(shape)
    phase = float(rng.uniform(0.0, 1.0))
    tail = np.zeros(TAIL_SEGMENTS)
    tail[0] = rng.normal(0.0, 0.25)
    tail[1:] = rng.normal(0.0, 0.12, TAIL_SEGMENTS - 1)
    lim = arena.half - 0.0005
    vec = np.zeros(Pose.SIZE)
    for attempt in range(200):
        if isinstance(beh, _RearWall):
            root = beh.place(rng)
        else:  # anywhere at first; further from the walls after each miss
            m = np.minimum((0.02 + 0.01 * min(attempt, 10)) * shape.scale, arena.half - 0.02)
            p = rng.uniform(-(arena.half - m), arena.half - m)
            root = _Root(float(p[0]), float(p[1]), float(rng.uniform(-math.pi, math.pi)))
        root.phase = phase
        cmd = beh.still(t, root)
        if cmd.gait > 0.5:
            floor_paws = _gait_paws(cmd, phase, floor)
        else:
            floor_paws = np.column_stack([cmd.nominal + rng.normal(0.0, 0.003, (4, 2)),
                                          np.full(4, floor)])
        vec = _compose(cmd, root, floor_paws, cmd.art[POSE_TAIL_YAW] + tail)
        joints = forward_kinematics(shape, Pose.from_vector(vec)).joints
        if np.all(np.abs(joints[:, :2]) <= lim):
            break
    return Pose.from_vector(vec), name


# ---------------------------------------------------------------------------------------
# The pose prior.


#: Seed and number of :func:`sample_pose` draws the prior's Gaussian is fitted to.
PRIOR_SEED: Final = 20_240_611
PRIOR_DRAWS: Final = 4000


def write_pose_prior(path: Path = PRIOR_FILE) -> None:
    """Store :func:`compute_pose_prior` at ``path`` (``.npz``)."""
    prior = compute_pose_prior()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: getattr(prior, k) for k in PRIOR_FIELDS})


def compute_pose_prior() -> PosePrior:
    """The pose prior: hard limits and a Gaussian fitted to :data:`PRIOR_DRAWS` draws.

    Draws :func:`sample_pose` for random shapes (:func:`~.body.sample_shape`) and all
    behaviours in turn with a fixed seed, in the default :class:`Arena` (about 5 s), the
    paw targets divided by the shape's scale. Standard deviations are at least 0.01 rad
    for angles and 1 mm for lengths; the correlation is that of the draws, except that
    the tail's bends are independent of everything.
    """
    rng = np.random.default_rng(PRIOR_SEED)
    draws = np.empty((PRIOR_DRAWS, Pose.SIZE))
    for i in range(PRIOR_DRAWS):
        shape = sample_shape(rng)
        draws[i] = sample_pose(rng, shape, behavior=BEHAVIORS[i % len(BEHAVIORS)])[0] \
            .to_vector()
        draws[i, POSE_PAWS] /= shape.scale
    mean = draws.mean(axis=0)
    std = draws.std(axis=0)
    # Ties between entries that move; not the tail's: a still draw bends it towards
    # its behaviour's shape, a moving tail lags and swings (in motion sequences a
    # correlated tail fills a hidden tip worse than an independent one)
    tail = np.zeros(Pose.SIZE, dtype=bool)
    tail[POSE_TAIL_PITCH] = tail[POSE_TAIL_YAW] = True
    tied = np.flatnonzero(~POSE_FREE & ~tail & (std > 0.0))
    corr = np.eye(Pose.SIZE)
    corr[np.ix_(tied, tied)] = np.corrcoef(draws[:, tied], rowvar=False)
    floor = np.full(Pose.SIZE, 0.01)
    floor[POSE_Z] = 0.001
    floor[POSE_PAWS] = 0.001
    std = np.maximum(std, floor)
    mean[POSE_FREE] = 0.0
    std[POSE_FREE] = np.inf
    return PosePrior(mean=mean, std=std, lower=POSE_LOWER.copy(), upper=POSE_UPPER.copy(),
                     free=POSE_FREE.copy(), correlation=corr)
