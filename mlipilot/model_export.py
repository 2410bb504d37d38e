"""A trained MACE model crosses from the training sandbox to the scorer as data, never as a pickle.

`export` runs inside the training sandbox (it unpickles the `.model` file the agent's code wrote,
which may run that code, harmlessly there) and writes `model.json` (mace-torch's own
`extract_config_mace_model`, classes and callables by name) plus `weights.pt` (a state dict).
`rebuild` runs in the scorer: every name is looked up in an allow-list taken from mace-torch's own
registries, the module is built from the installed mace-torch, and the weights are read with
`torch.load(..., weights_only=True)`, which stays restricted even where mace sets
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD. What cannot be rebuilt is an `ExportError` with the reason.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

CONFIG_FILE, WEIGHTS_FILE = "model.json", "weights.pt"
FORMAT = "mlipilot-mace-model/1"
MODEL_CLASSES = ("ScaleShiftMACE",)  # what mace-torch's extract_config_mace_model describes for energy models
ENERGY_READOUTS = ("LinearReadoutBlock", "NonLinearReadoutBlock", "NonLinearBiasReadoutBlock",
                   "GeneralNonLinearBiasReadoutBlock")
MAX_CONFIG_BYTES = 1 << 20
# the largest model the scorer builds (a model.json asking for 100,000 channels once kept it busy for
# 11 minutes): per knob, the range's maximum in the run's knobs.yaml where it declares one, else these
DEFAULT_CAPS = {"num_channels": 256, "max_L": 3, "correlation": 4, "num_interactions": 6,
                "num_radial_basis": 64, "max_ell": 6, "mlp_width": 1024}
MAX_WEIGHTS_BYTES = 2 << 30


class ExportError(RuntimeError):
    """The model cannot be described as (allow-listed config, weights) or rebuilt from it."""


def _to_json(value):
    import numpy as np
    import torch
    from e3nn import o3

    if isinstance(value, o3.Irreps):
        return {"irreps": str(value)}
    if isinstance(value, type):
        return {"class": value.__name__}
    if callable(value) and not isinstance(value, torch.Tensor):
        return {"callable": getattr(value, "__name__", repr(value))}
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return {"array": np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value).tolist()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ExportError(f"cannot describe a {type(value).__name__} ({value!r:.80}) as data")


def export(model_path: Path, out_dir: Path) -> dict:
    """Inside the sandbox: describe the trained model as config + weights; returns the description."""
    import mace  # noqa: F401  -- before e3nn
    import torch
    from mace import modules
    from mace.tools.scripts_utils import extract_config_mace_model

    model = torch.load(model_path, map_location="cpu", weights_only=False)
    if not any(type(model) is getattr(modules, name) for name in MODEL_CLASSES):  # not a look-alike subclass
        raise ExportError(f"{model_path}: a {type(model).__name__}, not one of mace-torch's {MODEL_CLASSES}")
    config = extract_config_mace_model(model)
    if "error" in config:
        raise ExportError(f"{model_path}: {config['error']}")
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    doc = {"format": FORMAT, "class": type(model).__name__, "dtype": dtype,
           "config": {k: _to_json(v) for k, v in config.items()}}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).write_text(json.dumps(doc, indent=1))
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out_dir / WEIGHTS_FILE)
    return doc


def _from_json(key: str, value):
    import numpy as np
    import torch
    from e3nn import o3
    from mace import modules

    if isinstance(value, list):
        return [_from_json(key, v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"irreps"}:
        return o3.Irreps(str(value["irreps"]))
    if set(value) == {"array"}:
        array = np.asarray(value["array"], dtype=float)
        return torch.tensor(array, dtype=torch.int64) if key == "atomic_numbers" else array
    if set(value) == {"class"}:
        allowed = (modules.interaction_classes if key.startswith("interaction_cls")
                   else {n: modules.readout_classes[n] for n in ENERGY_READOUTS} if key == "readout_cls" else {})
        if value["class"] not in allowed:
            raise ExportError(f"model.json: {key} = {value['class']!r} is not allowed; "
                              f"mace-torch classes for it: {', '.join(allowed) or 'none'}")
        return allowed[value["class"]]
    if set(value) == {"callable"}:
        gates = {getattr(f, "__name__", n): f for n, f in modules.gate_dict.items() if f is not None}
        if key != "gate" or value["callable"] not in gates:
            raise ExportError(f"model.json: {key} = {value['callable']!r} is not an allowed activation "
                              f"({', '.join(gates)})")
        return gates[value["callable"]]
    raise ExportError(f"model.json: {key} has an unknown value shape {sorted(value)}")


def _read_regular(path: Path, limit: int) -> bytes:
    """Read a file the sandbox wrote without following links or reading specials (a FIFO would hang)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ExportError(f"{path.name}: missing — the harness's export step did not run to the end") from None
    except OSError as e:
        raise ExportError(f"{path.name}: refused ({e.strerror}); a link or special file is not a model") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ExportError(f"{path.name}: not a regular file")
        if st.st_size > limit:
            raise ExportError(f"{path.name}: {st.st_size} bytes, more than the {limit} allowed")
        return f.read(limit + 1)


def take_export(out_dir: Path, dest: Path) -> Path:
    """Copy `out_dir/export/{model.json, weights.pt}` — written inside the sandbox — to `dest`, a folder
    only the harness writes, opening every path component without following links: a planted
    `export -> ../../other-trial/...` link is refused, never read through. Scoring, validation and
    the audit read only the copy."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fds = []
    try:
        try:
            fds.append(os.open(out_dir, flags | os.O_DIRECTORY))
            fds.append(os.open("export", flags | os.O_DIRECTORY, dir_fd=fds[-1]))
        except OSError as e:
            raise ExportError(f"export: refused ({e.strerror}); the harness's export folder must be a real "
                              "folder, not a link") from None
        dest.mkdir(parents=True, exist_ok=False)
        for name, limit in ((CONFIG_FILE, MAX_CONFIG_BYTES), (WEIGHTS_FILE, MAX_WEIGHTS_BYTES)):
            try:
                fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=fds[1])
            except OSError as e:
                raise ExportError(f"{name}: refused ({e.strerror}); a link or special file is not a model") from None
            with os.fdopen(fd, "rb") as f, open(dest / name, "xb") as g:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
                    raise ExportError(f"{name}: not a regular file of at most {limit} bytes")
                g.write(f.read(limit + 1))
    finally:
        for fd in fds:
            os.close(fd)
    return dest


def size_problem(config: dict, caps: dict | None = None) -> str | None:
    """Why model.json describes a model larger than the run allows (None when it does not), read from
    the description alone, before anything is built."""
    import mace  # noqa: F401  -- before e3nn
    from e3nn import o3

    caps = {**DEFAULT_CAPS, **(caps or {})}
    found: dict[str, list[tuple[str, float]]] = {}

    def note(knob: str, where: str, value) -> None:
        found.setdefault(knob, []).append((where, value))

    for key in ("hidden_irreps", "MLP_irreps"):
        if isinstance(config.get(key), dict) and isinstance(config[key].get("irreps"), str):
            try:
                irreps = o3.Irreps(config[key]["irreps"])
            except Exception:
                return f"{key}: {config[key]['irreps']!r} is not an irreps string"
            for mul, ir in irreps:
                note("num_channels" if key == "hidden_irreps" else "mlp_width", key, mul)
                note("max_L", key, ir.l)
    corr = config.get("correlation")
    for c in corr if isinstance(corr, list) else [corr]:
        note("correlation", "correlation", c)
    for key, knob in (("num_interactions", "num_interactions"), ("num_bessel", "num_radial_basis"),
                      ("max_ell", "max_ell")):
        note(knob, key, config.get(key))
    for width in config.get("radial_MLP") or []:
        note("mlp_width", "radial_MLP", width)
    for knob, values in found.items():
        for where, v in values:
            if v is None:
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v > caps[knob]:
                return (f"{where} = {v!r} exceeds the largest {knob} this run allows ({caps[knob]:g}, "
                        "from knobs.yaml's range or the harness's default) — not built")
    return None


def _description(export_dir: Path, caps: dict | None) -> dict:
    """model.json, checked: format, class, dtype and the size caps."""
    try:
        doc = json.loads(_read_regular(export_dir / CONFIG_FILE, MAX_CONFIG_BYTES))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExportError(f"{CONFIG_FILE}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("config"), dict):
        raise ExportError(f"{CONFIG_FILE}: not a {FORMAT} description")
    if doc.get("class") not in MODEL_CLASSES:
        raise ExportError(f"{CONFIG_FILE}: class {doc.get('class')!r} is not one of {MODEL_CLASSES}")
    if doc.get("dtype") not in ("float32", "float64"):
        raise ExportError(f"{CONFIG_FILE}: dtype {doc.get('dtype')!r} is not float32 or float64")
    if problem := size_problem(doc["config"], caps):
        raise ExportError(f"{CONFIG_FILE}: {problem}")
    return doc


def _architecture(doc: dict) -> str:
    return json.dumps([doc["class"], doc["dtype"], doc["config"]], sort_keys=True)


def _build(doc: dict):
    """The module mace-torch builds from a checked description (weights not loaded): 0.7 s for the Cu
    baseline, most of it e3nn generating code."""
    import mace  # noqa: F401  -- before e3nn
    import torch
    from mace import modules

    config = {str(k): _from_json(str(k), v) for k, v in doc["config"].items()}
    dtype = {"float32": torch.float32, "float64": torch.float64}[doc["dtype"]]
    return getattr(modules, doc["class"])(**config).to(dtype)


_BUILT: dict[str, object] = {}  # architecture -> a module built ahead (prebuild), used once by rebuild


def prebuild(export_dir: Path, caps: dict | None = None) -> None:
    """Build ahead, while training runs, the module an earlier trial's export describes: most trials
    keep the architecture, and then `rebuild` only loads the new weights into it. Harness-written
    exports only (a trial folder's model/), checked as `rebuild` checks them."""
    doc = _description(Path(export_dir), caps)
    _BUILT.clear()
    _BUILT[_architecture(doc)] = _build(doc)


def rebuild(export_dir: Path, caps: dict | None = None):
    """In the scorer: the module mace-torch builds from model.json (or the one `prebuild` built for
    the same architecture: load_state_dict(strict=True) then sets every parameter and buffer, so it
    is the same model; its float32 numbers differ from a fresh build's only as two fresh builds' do,
    by 1e-7), with weights loaded weights-only. `caps`: the largest value of
    each size knob (see size_problem)."""
    import io

    import torch

    doc = _description(Path(export_dir), caps)
    try:
        model = _BUILT.pop(_architecture(doc), None)
        model = _build(doc) if model is None else model
        state = torch.load(io.BytesIO(_read_regular(export_dir / WEIGHTS_FILE, MAX_WEIGHTS_BYTES)),
                           map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except ExportError:
        raise
    except Exception as e:  # a config or state dict mace-torch rejects
        raise ExportError(f"mace-torch cannot rebuild the model: {type(e).__name__}: {str(e)[:300]}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, doc["dtype"]


def _preload() -> None:
    """Import what `export` needs (seconds of mace-torch, e3nn, scipy): done while training runs."""
    import mace  # noqa: F401  -- before e3nn
    import torch  # noqa: F401
    from mace import modules  # noqa: F401
    from mace.tools.scripts_utils import extract_config_mace_model  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """`python -m mlipilot.model_export [--wait] MODEL OUT_DIR`: the harness's step at the end of the
    training job. `--wait`: import first, then export when the harness writes `go` to stdin (it does
    once train.py's sandbox has ended); anything else on stdin, or none, exits without exporting."""
    import time

    args = list(argv if argv is not None else sys.argv[1:])
    wait = "--wait" in args
    model_path, out_dir = [a for a in args if a != "--wait"][:2]
    t0 = time.time()
    if wait:
        _preload()
        loaded = time.time() - t0
        if sys.stdin.readline().strip() != "go":
            return 0
        t0 = time.time()
    try:
        doc = export(Path(model_path), Path(out_dir))
    except ExportError as e:
        print(f"model export: {e}", file=sys.stderr)
        return 3
    took = f"imports {loaded:.1f} s while training ran, export {time.time() - t0:.1f} s" if wait else \
        f"{time.time() - t0:.1f} s"
    print(f"model export: {doc['class']} ({doc['dtype']}) -> {out_dir} ({took})")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the files are closed; tearing down torch and mace-torch's modules took seconds
