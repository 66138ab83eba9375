"""The FFHQ-256 loader: a restricted unpickler and the transfer onto our networks.

The test pickles are built here with the official layouts: a dict G/D/G_ema of
torch_utils.persistence objects (state = module __dict__ with nested _parameters/_buffers/
_modules) and a TF (G, D, Gs) tuple of dnnlib Network objects with variables/components.
"""

from __future__ import annotations

import collections
import math
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from syndface.gan.ffhq import initialise_from_ffhq, load_source_networks, safe_load
from syndface.gan.networks import Discriminator, GanArch, Generator, label_vectors, normalize_2nd_moment
from syndface.seeding import seed_everything

ARCH = GanArch(resolution=8, channel_base=64, channel_max=8, z_dim=8, w_dim=8, mapping_layers=2, mbstd_group=2)


@pytest.fixture
def nvidia_modules(monkeypatch):
    """Stand-ins for torch_utils.persistence / dnnlib so the test can pickle objects the way NVIDIA's code does."""
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")
    network = types.ModuleType("dnnlib.tflib.network")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("only the loader under test may rebuild these")

    _reconstruct_persistent_obj.__module__ = persistence.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = util.__name__, "EasyDict"
    util.EasyDict = EasyDict

    class Network:
        def __init__(self, state):
            self.state = state

        def __getstate__(self):
            return self.state

    Network.__module__, Network.__qualname__ = network.__name__, "Network"
    network.Network = Network
    for name, module in (
        ("torch_utils", types.ModuleType("torch_utils")),
        ("torch_utils.persistence", persistence),
        ("dnnlib", types.ModuleType("dnnlib")),
        ("dnnlib.util", util),
        ("dnnlib.tflib", types.ModuleType("dnnlib.tflib")),
        ("dnnlib.tflib.network", network),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict, Network=Network)


class Persistent:
    """Pickles like an object of a @persistence.persistent_class (its source travels with it)."""

    def __init__(self, reconstruct, class_name, state):
        self.reconstruct, self.class_name, self.state = reconstruct, class_name, state

    def __reduce__(self):
        meta = {
            "type": "class",
            "version": 6,
            "module_src": "import os\nos.system('echo pwned')\n",
            "class_name": self.class_name,
            "state": self.state,
        }
        return self.reconstruct, (meta,)


def official_tree(flat: dict[str, torch.Tensor], fake) -> Persistent:
    """Nest a flat state dict into persistent module records, as the official pickle stores modules."""

    def node(prefix: str) -> Persistent:
        params = collections.OrderedDict(
            (k[len(prefix) :], torch.nn.Parameter(v.clone()))
            for k, v in flat.items()
            if k.startswith(prefix) and "." not in k[len(prefix) :] and "noise_const" not in k and "w_avg" not in k
        )
        buffers = collections.OrderedDict(
            (k[len(prefix) :], v.clone())
            for k, v in flat.items()
            if k.startswith(prefix)
            and "." not in k[len(prefix) :]
            and k not in params
            and k[len(prefix) :] not in params
        )
        children = sorted(
            {k[len(prefix) :].split(".")[0] for k in flat if k.startswith(prefix) and "." in k[len(prefix) :]}
        )
        modules = collections.OrderedDict((c, node(f"{prefix}{c}.")) for c in children)
        if prefix.endswith("conv1.") and "synthesis" in prefix:
            buffers["resample_filter"] = torch.ones(4, 4) / 16
        state = {
            "_parameters": params,
            "_buffers": buffers,
            "_modules": modules,
            "training": False,
            "_init_kwargs": fake.EasyDict(channel_base=ARCH.channel_base),
            "weight_gain": np.float64(0.5),
        }
        return Persistent(fake.reconstruct, "Module", state)

    return node("")


def unconditional_source(seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """State dicts shaped like an unconditional source: no label embeddings, fc0 sees z only, D outputs 1 logit."""
    seed_everything(seed)
    G, D = Generator(ARCH), Discriminator(ARCH)
    g = {k: v for k, v in G.state_dict().items() if not k.startswith("mapping.embed.")}
    g["mapping.fc0.weight"] = g["mapping.fc0.weight"][:, : ARCH.z_dim].clone()
    g["mapping.w_avg"] = torch.randn(ARCH.w_dim)
    d = {k: v for k, v in D.state_dict().items() if not k.startswith("embed.")}
    d["b4.out.weight"], d["b4.out.bias"] = torch.randn(1, ARCH.channels(4)), torch.zeros(1)
    return {"G": g, "D": d, "G_ema": {k: v + 1 for k, v in g.items()}}


def write_official_pickle(path, source, fake) -> None:
    with open(path, "wb") as fh:
        pickle.dump(
            {k: official_tree(v, fake) for k, v in source.items()}
            | {"augment_pipe": None, "training_set_kwargs": None},
            fh,
        )


def test_refuses_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G": Exploit()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load the global (posix|os|nt).system"):
        safe_load(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(getattr))  # any global outside the allow-list, even a harmless builtin
    with pytest.raises(pickle.UnpicklingError, match="builtins.getattr"):
        safe_load(path)


def test_loads_the_official_structure_without_running_its_source(tmp_path, nvidia_modules, capfd):
    source = unconditional_source(1)
    path = tmp_path / "ffhq-res256-mirror-paper256-noaug.pkl"
    write_official_pickle(path, source, nvidia_modules)
    loaded = load_source_networks(path)
    assert "pwned" not in capfd.readouterr().out
    for key in ("G", "D", "G_ema"):
        assert set(loaded[key]) - {"synthesis.b8.conv1.resample_filter", "synthesis.b4.conv1.resample_filter"} == set(
            source[key]
        )
        for name, tensor in source[key].items():
            assert torch.equal(loaded[key][name], tensor), name


def test_transfer_keeps_ffhq_mapping_and_leaves_label_parts_fresh(tmp_path, nvidia_modules):
    source = unconditional_source(1)
    path = tmp_path / "ffhq.pkl"
    write_official_pickle(path, source, nvidia_modules)
    seed_everything(2)
    G, D = Generator(ARCH), Discriminator(ARCH)
    G_ema = Generator(ARCH)
    fresh_embed, fresh_out = G.mapping.embed.disease.clone(), D.b4.out.weight.clone()
    initialise_from_ffhq(G, D, G_ema, path)
    assert torch.equal(G.synthesis.b8.conv0.weight, source["G"]["synthesis.b8.conv0.weight"])
    assert torch.equal(G_ema.synthesis.b8.conv0.weight, source["G_ema"]["synthesis.b8.conv0.weight"])
    assert torch.equal(D.b8.conv1.weight, source["D"]["b8.conv1.weight"])
    assert torch.equal(G.mapping.w_avg, source["G"]["mapping.w_avg"])
    assert torch.equal(G.mapping.embed.disease, fresh_embed) and torch.equal(D.b4.out.weight, fresh_out)
    # With label columns zero and z columns rescaled, fc0 computes exactly FFHQ's first mapping layer.
    z, labels = torch.randn(3, ARCH.z_dim), label_vectors(["WS", "22q", "control"], ["infant", "child", "older_adult"])
    ours = G.mapping.fc0(G.mapping.mapping_input(z, labels))
    w, b = source["G"]["mapping.fc0.weight"], source["G"]["mapping.fc0.bias"]
    ffhq = F.leaky_relu(F.linear(normalize_2nd_moment(z), w * 0.01 / math.sqrt(ARCH.z_dim), b * 0.01), 0.2) * math.sqrt(
        2
    )
    assert torch.allclose(ours, ffhq, atol=1e-6)


def test_mismatched_source_is_refused_with_the_flags_to_use(tmp_path, nvidia_modules):
    source = unconditional_source(1)
    source["G"]["mapping.fc2.weight"] = torch.randn(ARCH.w_dim, ARCH.w_dim)
    path = tmp_path / "ffhq.pkl"
    write_official_pickle(path, source, nvidia_modules)
    with pytest.raises(ValueError, match="mapping.fc2.weight .only in the source.*--mapping-layers 8"):
        initialise_from_ffhq(Generator(ARCH), Discriminator(ARCH), Generator(ARCH), path)


def tf_variables(flat: dict[str, torch.Tensor], generator: bool) -> dict[str, np.ndarray]:
    """Our names -> TF StyleGAN2-ADA variable names and layouts (the inverse of the loader's rules)."""
    out = {}
    for name, t in flat.items():
        a = t.numpy()
        parts = name.split(".")
        if generator and parts[0] == "mapping":
            out["dlatent_avg" if parts[1] == "w_avg" else f"mapping/Dense{parts[1][2:]}/{parts[2]}"] = (
                a.T if a.ndim == 2 else a
            )
            continue
        if generator:
            res, layer, leaf = int(parts[1][1:]), parts[2], ".".join(parts[3:])
            if layer == "const":
                out[f"synthesis/{res}x{res}/Const/const"] = a[None]
                continue
            tf_layer = {"conv0": "Conv0_up", "conv1": "Conv" if res == 4 else "Conv1", "torgb": "ToRGB"}[layer]
            if leaf == "noise_const":
                index = 0 if res == 4 else 2 * int(math.log2(res)) - (5 if layer == "conv0" else 4)
                out[f"synthesis/noise{index}"] = a[None, None]
                continue
            key = f"synthesis/{res}x{res}/{tf_layer}/" + {"affine.weight": "mod_weight", "affine.bias": "mod_bias"}.get(
                leaf, leaf
            )
            if leaf == "weight":
                a = a.transpose(2, 3, 1, 0)
                a = a[::-1, ::-1] if layer == "conv0" else a
            out[key] = a.T if leaf == "affine.weight" else (a - 1 if leaf == "affine.bias" else a)
            continue
        layer = {
            "fromrgb": "FromRGB",
            "conv0": "Conv0",
            "conv1": "Conv1_down",
            "skip": "Skip",
            "conv": "Conv",
            "fc": "Dense0",
        }.get(parts[1])
        key = "Output/" + parts[2] if parts[1] == "out" else f"{parts[0][1:]}x{parts[0][1:]}/{layer}/{parts[2]}"
        out[key] = a.transpose(2, 3, 1, 0) if a.ndim == 4 else (a.T if a.ndim == 2 else a)
    return out


def test_loads_a_tf_pickle_with_components(tmp_path, nvidia_modules):
    source = unconditional_source(3)
    Network = nvidia_modules.Network

    def tf_net(flat, generator):
        variables = tf_variables(flat, generator)
        if not generator:
            return Network({"version": 4, "name": "D", "variables": list(variables.items()), "components": {}})
        parts = {
            c: [(k[len(c) + 1 :], v) for k, v in variables.items() if k.startswith(c + "/")]
            for c in ("mapping", "synthesis")
        }
        components = nvidia_modules.EasyDict(
            {c: Network({"name": f"G_{c}", "variables": v, "components": {}}) for c, v in parts.items()}
        )
        own = [("dlatent_avg", variables["dlatent_avg"]), ("lod", np.float32(0))]
        return Network(
            {
                "version": 4,
                "name": "G",
                "variables": own,
                "components": components,
                "build_module_src": "raise SystemExit",
            }
        )

    path = tmp_path / "ffhq-tf.pkl"
    with open(path, "wb") as fh:
        pickle.dump((tf_net(source["G"], True), tf_net(source["D"], False), tf_net(source["G_ema"], True)), fh)
    loaded = load_source_networks(path)
    for key in ("G", "D", "G_ema"):
        assert set(loaded[key]) == set(source[key])
        for name, tensor in source[key].items():
            assert torch.equal(loaded[key][name], tensor), name
