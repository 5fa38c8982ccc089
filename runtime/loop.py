"""The drive loop: newest frame -> input providers -> backend -> policy -> watchdog -> link.

Event-driven, not clocked: the loop waits for the camera's next frame and handles it at once,
so a command is never older than one inference plus a hand-over, and a frame is never inferred
twice (the camera hands each frame out once). Everything that can fail per frame ends in
neutral through the :class:`~runtime.watchdog.Watchdog`; the watchdog's own thread covers the
cases where this loop cannot run at all (a hung backend, a stalled camera).

Every model input comes from its provider (:mod:`runtime.inputs`, one per input, in manifest
order), each filled for every frame. When any provider cannot give its input for a frame (a
sequence still filling, a stale IMU), the frame is not inferred: its event is raised and the car
is commanded neutral, until every input is ready again.

The outputs become raw (steering, throttle) through the pilot (:mod:`runtime.pilots`: end to end,
lane following), which may hold the car in neutral for a frame (its event, e.g. ``lane.lost``);
the policy then applies the limits. With a safety layer (:mod:`runtime.safety`) every frame is also
handed to the detector's thread first, and each drive needs its fresh verdict (:meth:`SafetyLayer.check`);
its stops come from its own thread through the watchdog's blocks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from runtime.backends.base import Backend
from runtime.camera import Camera, CameraFrame
from runtime.events import Events
from runtime.inputs import InputProvider
from runtime.pilots import Pilot, PilotResult
from runtime.policy import Command, Policy
from runtime.recording import Recorder
from runtime.safety import SafetyLayer
from runtime.stats import LoopStats
from runtime.telemetry import FrameReport, Telemetry
from runtime.watchdog import Watchdog

log = logging.getLogger(__name__)

# Why a run ended (RunResult.reason).
MAX_FRAMES, DURATION, CAMERA_ENDED, STOPPED = "max_frames", "duration", "camera_ended", "stopped"


class DriveLoop:
    """The per-frame pipeline: ``camera`` frame -> ``inputs`` -> ``backend.infer`` -> ``policy`` ->
    ``watchdog.drive`` (see the module). ``stats`` collects per-stage timings (s); ``recorder``
    (optional) gets one record per handled frame; ``notify`` is the systemd notifier (``READY=1`` once
    a frame was inferred and the car answered). ``max_frames`` / ``duration_s`` (s) bound the run.
    A backend error, an invalid (NaN/inf) output or a missing input commands neutral for that frame
    and raises its event; any exception escaping :meth:`run` commands neutral and is re-raised.
    ``pilot`` turns outputs into raw commands (default: the policy's own decoders, end to end);
    ``safety`` (optional) is the detection safety layer, fed every frame, asked before every drive;
    ``telemetry`` (optional) gets a :class:`~runtime.telemetry.FrameReport` of every inferred frame.
    """

    def __init__(
        self,
        camera: Camera,
        backend: Backend,
        inputs: Sequence[InputProvider],
        policy: Policy,
        watchdog: Watchdog,
        events: Events,
        stats: LoopStats | None = None,
        recorder: Recorder | None = None,
        notify: Callable[[str], Any] | None = None,
        max_frames: int | None = None,
        duration_s: float | None = None,
        pilot: Pilot | None = None,
        safety: SafetyLayer | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.camera, self.backend, self.inputs, self.policy = camera, backend, list(inputs), policy
        self.pilot: Pilot = pilot if pilot is not None else _PolicyDecoders(policy)
        self.safety = safety
        self.telemetry = telemetry  # told of every inferred frame once its command is out (shadow, metrics)
        self.feeds: dict[str, np.ndarray] = {p.name: p.out for p in self.inputs}  # refilled per frame
        self._input_events: set[str] = set()  # raised by a provider and not yet cleared
        self._missing: list[InputProvider] = []  # providers not ready for the current frame
        self.watchdog, self.events = watchdog, events
        self.stats = stats or LoopStats()
        self.recorder, self.notify = recorder, notify
        self.max_frames, self.duration_s = max_frames, duration_s
        self.reason = ""
        self._ready = False

    def run(self, stop: threading.Event | None = None) -> str:
        """Run until ``max_frames``, ``duration_s``, the camera's end or ``stop``; the reason."""
        stop = stop or threading.Event()
        st = self.stats
        st.t_start = time.monotonic()
        end = st.t_start + self.duration_s if self.duration_s else float("inf")
        deadline = self.watchdog.deadline_s
        try:
            while True:
                if stop.is_set():
                    self.reason = STOPPED
                    break
                if self.max_frames is not None and st.frames >= self.max_frames:
                    self.reason = MAX_FRAMES
                    break
                now = time.monotonic()
                if now >= end:
                    self.reason = DURATION
                    break
                # Short waits keep a stop request and the duration prompt.
                frame = self.camera.get(min(deadline, end - now))
                if frame is None:
                    if self.camera.ended:
                        self.reason = CAMERA_ENDED
                        break
                    if time.monotonic() - now >= deadline:
                        self.events.raise_("camera.stalled", f"no frame for {deadline * 1000:.0f} ms")
                    continue
                self._step(frame)
        except BaseException as e:
            self.events.raise_("loop.crashed", repr(e))
            self.watchdog.neutral("loop crashed")
            raise
        finally:
            st.t_end = time.monotonic()
        self.watchdog.neutral(f"run ended: {self.reason}")
        return self.reason

    def _step(self, frame: CameraFrame) -> None:
        st, ev, wd = self.stats, self.events, self.watchdog
        t0 = time.monotonic()
        if self.safety is not None:
            self.safety.submit(frame)  # the detector starts on this frame while the pilot infers
        ev.clear("camera.stalled")
        try:
            waiting = self._gather(frame)
            t1 = time.monotonic()
            # The capture thread's preprocessing overlapped the previous frame: count it as well.
            t_pre = (t1 - t0) + (frame.t_ready - frame.t_capture if frame.input is not None else 0.0)
            if waiting is not None:
                self._not_ready(frame, waiting)
                return
            outputs = self.backend.infer(self.feeds)
            t2 = time.monotonic()
        except Exception as e:
            st.backend_errors += 1
            ev.raise_("backend.error", f"frame {frame.id}: {type(e).__name__}: {e}")
            wd.neutral("backend error")
            self.policy.reset()
            self._record(frame, None, None, False, {})
            return
        ev.clear("backend.error")
        if wd.car_stopped:  # after any neutral the throttle ramps up from zero, never jumps back
            self.policy.reset()
        decision = self.pilot(outputs, frame)
        if decision.hold is None:
            cmd = self.policy.limit(decision.steering, decision.throttle, t2)
        else:
            cmd = Command(0.0, 0.0, False, decision.steering, decision.throttle or 0.0)
        t3 = time.monotonic()
        st.frames += 1
        if not self._ready and self.notify is not None and self.watchdog.car_answered():
            self._ready = True  # systemd: started once a frame was inferred AND the car answered
            _safe_notify(self.notify, "READY=1")
        held: str | None = None  # why the car was held in neutral for this frame (not a fault)
        event = self.pilot.event
        if decision.hold is not None:
            assert event is not None, f"pilot {self.pilot.kind} held the car without a declared event"
            st.pilot_held += 1
            ev.raise_(event, f"frame {frame.id}: {decision.hold}")
            wd.neutral(decision.hold)
            self.policy.reset()
            held, sent = event, False
        elif not cmd.valid:
            st.invalid += 1
            ev.raise_("policy.nonfinite", f"frame {frame.id}: steering={cmd.raw_steering} throttle={cmd.raw_throttle}")
            wd.neutral("non-finite output")
            sent = False
        else:
            if event is not None:
                ev.clear(event)
            ev.clear("policy.nonfinite")
            held = self.safety.check(frame) if self.safety is not None else None
            if held is not None:
                wd.neutral(held)
                sent = False
            else:
                sent = wd.drive(cmd, frame.t_capture, frame.id)
                if not sent and wd.blocked:
                    held = "blocked"
            if held is not None:
                st.safety_held += 1
        t4 = time.monotonic()
        st.add_frame(t0 - frame.t_capture, t_pre, t2 - t1, t3 - t2, t4 - t3, t4 - frame.t_capture if sent else None)
        if sent:
            st.commands += 1
            st.written += wd.last_written
            if st.t_first_command is None:
                st.t_first_command = t4
            ev.clear("frame.stale")
        elif cmd.valid and held is None and not wd.halt.is_set():  # a frame cut short by a stop is not stale
            st.add_stale(t4 - frame.t_capture)
            self.policy.reset()
            ev.raise_("frame.stale", f"frame {frame.id} was {(t4 - frame.t_capture) * 1000:.0f} ms old")
        if self.telemetry is not None:
            ok = cmd.valid and decision.hold is None
            self.telemetry.publish(frame, FrameReport(
                frame.id, frame.index, frame.t_capture, decision.hold is None, decision.steering, decision.throttle,
                cmd.steering if ok else 0.0, cmd.throttle if ok else 0.0, sent, held,
                (t4 - frame.t_capture) * 1000.0 if sent else None))
        if self.recorder is not None:
            timings = {"frame_age": t0 - frame.t_capture, "preprocess": t_pre, "inference": t2 - t1,
                       "policy": t3 - t2, "write": t4 - t3}
            self._record(frame, cmd, outputs, sent, timings, t4, decision=decision, held=held)

    def _gather(self, frame: CameraFrame) -> InputProvider | None:
        """Fill every input for this frame (all of them, so histories advance); the first
        provider that is not ready, or None."""
        waiting = None
        self._missing.clear()
        for p in self.inputs:
            x = p.fill(frame)
            if x is None:
                waiting = waiting or p
                self._missing.append(p)
            else:
                self.feeds[p.name] = x
        if waiting is None and self._input_events:
            for name in self._input_events:
                self.events.clear(name)
            self._input_events.clear()
        return waiting

    def _not_ready(self, frame: CameraFrame, p: InputProvider) -> None:
        """An input is missing for this frame: no inference, neutral, the provider's event."""
        self.stats.not_ready += 1
        self.events.raise_(p.event, f"frame {frame.id}: {p.detail}")
        self._input_events.add(p.event)
        self.watchdog.neutral(f"input {p.name} not ready")
        self.policy.reset()
        self._record(frame, None, None, False, {}, not_ready=p.name)

    def _record(
        self, frame: CameraFrame, cmd: Command | None, outputs: dict[str, Any] | None, sent: bool,
        timings: dict[str, float], t_command: float | None = None, not_ready: str | None = None,
        decision: PilotResult | None = None, held: str | None = None,
    ) -> None:
        if self.recorder is None:
            return
        h, w = int(frame.image.shape[0]), int(frame.image.shape[1])
        verdict = self.safety.latest() if self.safety is not None else None
        safety = verdict.to_record(w, h, frame.t_capture) if verdict is not None else None
        overlay = None
        if self.recorder.overlay:
            overlay = {**((decision.overlay or {}) if decision is not None else {}),
                       "safety": safety, "held": held, "sent": sent,
                       "steering": cmd.steering if cmd and cmd.valid else 0.0,
                       "throttle": cmd.throttle if cmd and cmd.valid else 0.0}
        raw = None
        if outputs and self.pilot.kind == "end_to_end":  # the command outputs: a few values, never a map
            raw = {k: [_finite_or_none(v) for v in a.reshape(-1)] for k, a in outputs.items() if a.size <= RAW_VALUES}
        self.recorder.add(
            {
                "frame_id": frame.id,
                "source_index": frame.index,
                "t_capture": round(frame.t_capture, 6),
                "t_command": round(t_command, 6) if sent and t_command is not None else None,
                "steering": cmd.steering if cmd and cmd.valid else 0.0,
                "throttle": cmd.throttle if cmd and cmd.valid else 0.0,
                "valid": bool(cmd and cmd.valid),
                "sent": sent,  # handed to the link, not stale
                "written": sent and self.watchdog.last_written,  # the link wrote it at once (see LoopStats)
                "raw": raw,
                "timings_ms": {k: round(v * 1000.0, 4) for k, v in timings.items()},
                "inputs": self._recorded_inputs(),
                "not_ready": not_ready,
                "held": held,  # the pilot's event (lane.lost) or the safety layer's (safety.*, blocked)
                "pilot": decision.record if decision is not None else None,
                "safety": safety,
            },
            frame.image,
            overlay,
        )


    def _recorded_inputs(self) -> dict[str, Any]:
        """Every non-image input's value for this frame (what the model got, or would have got)."""
        out: dict[str, Any] = {}
        for p in self.inputs:
            if p in self._missing:
                out[p.name] = None  # not given for this frame (see "not_ready")
                continue
            v = p.recorded()
            if v is not None:
                out[p.name] = v
        return out


RAW_VALUES = 64  # a recording's "raw" keeps outputs up to this many values (vectors, not maps)


class _PolicyDecoders(Pilot):
    """End to end through the policy's own decoders: the loop's pilot when none is given."""

    kind = "end_to_end"
    tasks = ("driving",)

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    @classmethod
    def for_bundle(cls, manifest: Any, options: Any = None) -> Pilot:
        """Not built from a bundle (see :class:`runtime.pilots.EndToEndPilot`)."""
        raise NotImplementedError

    def __call__(self, outputs: Any, frame: CameraFrame) -> PilotResult:
        """The policy's decoded steering and throttle."""
        return PilotResult(*self.policy.decode(outputs))


def _finite_or_none(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None  # strict JSON has no NaN/inf; "valid": false says why


def _safe_notify(notify: Callable[[str], Any], msg: str) -> None:
    try:
        notify(msg)
    except Exception as e:  # systemd notification is advisory
        log.debug("notify(%r) failed: %s", msg, e)
