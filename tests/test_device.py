"""cvcore.device: detection once, never blocking pages, and TensorFlow's first import never raced."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_fresh(code: str) -> subprocess.CompletedProcess:
    """In a new interpreter, where TensorFlow has not been imported yet."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})


def test_configure_once_and_describe():
    from cvcore import device

    info = device.configure()
    assert device.configure() is info and device.peek() is info
    assert info.kind in ("GPU", "CPU") and info.cpu_count >= 1
    assert info.memory_growth == (info.kind == "GPU")
    assert device.describe().startswith(info.label)


def test_peek_never_blocks_and_background_detection():
    done = run_fresh("""
        from cvcore import device
        assert device.peek() is None          # nothing imported yet, and peek did not import it
        import sys; assert "tensorflow" not in sys.modules
        device.configure_async().join(120)
        assert device.peek() is not None and device.configure_async() is device.configure_async()
        print("ok", device.peek().label)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")


@pytest.mark.slow
def test_first_visit_race_builds_and_trains_correctly():
    """A first page visit: background detection imports TensorFlow while the page builds a model
    and a job trains another. Every model must build with unique layer names, every time."""
    done = run_fresh("""
        import threading
        from cvcore import device, models, data
        from cvcore.runs import RunConfig, run_training
        spec = models.PRESETS["Keras mnist_cnn (32-64 convolutions, dropout)"]
        digits = data.load_dataset("digits")
        errors = []
        def build():
            try:
                for _ in range(3):
                    names = [l.name for l in models.build_model(spec).layers]
                    assert len(set(names)) == len(names), names
            except Exception as err:
                errors.append(repr(err))
        def job():
            try:
                cfg = RunConfig(spec=models.PRESETS["Basic CNN (6 and 12 filters)"], dataset="digits",
                                n_train=200, n_val=50, epochs=1)
                run_training(cfg, digits)
            except Exception as err:
                errors.append(repr(err))
        device.configure_async()
        threads = [threading.Thread(target=build), threading.Thread(target=job), threading.Thread(target=build)]
        [t.start() for t in threads]; [t.join(240) for t in threads]
        print("errors", errors)
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "errors []" in done.stdout, done.stdout[-3000:]
