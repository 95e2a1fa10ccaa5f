"""A pose-tracking worker process: ``python -m motionlib.ingest._worker`` (see tracker.py)."""

from __future__ import annotations

import os
import pickle
import sys


def main() -> None:
    # The pipe to the parent is our stdout; nothing else may write there.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer

    def send(msg) -> None:
        pickle.dump(msg, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    from motionlib.core.errors import EstimatorError, MediaError, MotionlibError

    import time

    t0 = time.perf_counter()
    runner = None
    try:
        job = pickle.load(inp)
        from pathlib import Path

        from motionlib.media import video
        from motionlib.ingest.tracker import SegmentRunner

        info = video.probe(Path(job["path"]))
        runner = SegmentRunner(
            info, job["spec"], max_size=job["max_size"], start=job["start"], end=job["end"],
            warmup=job["warmup"], clip_end=job["clip_end"], recover=job.get("recover", True),
        )
        t_ready = time.perf_counter()
        step = [0]

        def progress(n: int) -> None:
            if n - step[0] >= 8:
                step[0] = n
                send(("progress", n))

        warm, seg = runner.run(progress)
        send(("progress", len(seg)))
        send(("frames", warm, seg))
        import resource

        ru = resource.getrusage(resource.RUSAGE_SELF)
        send(("done", {"setup_s": round(t_ready - t0, 3), "run_s": round(time.perf_counter() - t_ready, 3),
                        "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
                        "frames": len(seg), "warmup_frames": len(warm)}))
        while True:
            try:
                cmd = pickle.load(inp)
            except EOFError:
                return
            if cmd[0] == "extend":
                send(("extended", runner.extend(cmd[1])))
            else:
                return
    except MediaError as err:
        send(("error", "media", str(err)))
    except EstimatorError as err:
        send(("error", "estimator", str(err)))
    except MotionlibError as err:
        send(("error", "other", str(err)))
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    except Exception as err:  # report, do not hang the parent
        send(("error", "other", f"pose worker failed: {type(err).__name__}: {err}"))
    finally:
        if runner is not None:
            runner.close()


if __name__ == "__main__":
    main()
