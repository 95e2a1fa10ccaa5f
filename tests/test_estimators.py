import subprocess
import sys

import pytest

from motionlib.core.errors import EstimatorError, InputError
from motionlib.ingest.estimators import spec_for
from motionlib.ingest.pipeline import IngestOptions


def test_settings_digest_depends_on_what_changes_results_only():
    base = IngestOptions()
    assert base.digest() == IngestOptions(workers=3).digest()
    assert base.digest() != IngestOptions(end=2.0).digest()
    assert base.digest() != IngestOptions(max_size=960).digest()
    assert base.digest() != IngestOptions(whole_body=True).digest()
    assert spec_for().settings["model_complexity"] == 1


def test_option_conflicts_and_ranges(tmp_path):
    with pytest.raises(InputError, match="cannot be combined"):
        spec_for(whole_body=True, task_file=tmp_path / "x.task")
    # the library names its parameters; the command line spells them as its flags (test_layers)
    with pytest.raises(InputError, match="max_size"):
        IngestOptions(max_size=10)
    with pytest.raises(InputError, match="min_detection_confidence"):
        IngestOptions(min_detection_confidence=1.5)


def test_a_bad_task_file_is_a_clear_error(tmp_path):
    bogus = tmp_path / "pose.task"
    bogus.write_bytes(b"PK\x03\x04 not really a model")
    with pytest.raises(EstimatorError, match="not a usable MediaPipe pose landmarker model"):
        spec_for(task_file=bogus).build()
    with pytest.raises(EstimatorError, match="no such file"):
        spec_for(task_file=tmp_path / "missing.task").build()


def test_matplotlib_still_works_after_the_deferred_import():
    code = (
        "from motionlib.ingest.estimators.mediapipe import _import_mediapipe\n"
        "import sys\n"
        "mp = _import_mediapipe()\n"
        "assert 'matplotlib' not in sys.modules, 'pyplot was imported eagerly'\n"
        "from mediapipe.python.solutions import drawing_utils\n"
        "assert callable(drawing_utils.plt.figure)\n"
        "import matplotlib.pyplot as plt\n"
        "assert plt is sys.modules['matplotlib.pyplot'] and callable(plt.plot)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]
