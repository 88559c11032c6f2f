"""The first-layer kernel (tinycc_first_conv_s8: convolutions over 1 to 4 input channels from an
int16 band of rows, `CONV_2D.few_channels = "band"`, the default on the DSP cores): bit-exact with
LiteRT (and TFLM under double rounding) on one-convolution models built here with random shapes,
weights and quantization: 1 to 4 input channels, 3x3, 5x5, 10x4 and 1xK windows, strides 1 and 2,
SAME and VALID padding, odd channel counts, rows whose width is not a multiple of 3, ReLU, ReLU6
and none. On the host and the Cortex-M3 the plain C, on the Cortex-M4 the assembly (and its C
at -O0), on the Cortex-M7 the assembly."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tinycc import compile_model
from tinycc.kernels import first_layer
from tinycc.verify import verify

BAND = {"CONV_2D": {"few_channels": "band"}}

# (H, W, C, OC, KH, KW, SH, SW, padding, activation)
SHAPES = {
    "vww": (13, 14, 3, 8, 3, 3, 2, 2, "SAME", "RELU"),        # VWW's first layer, odd sides
    "resnet": (9, 11, 3, 5, 3, 3, 1, 1, "SAME", "NONE"),      # ResNet-8's, an odd channel count
    "kws": (21, 10, 1, 8, 10, 4, 2, 2, "SAME", "RELU"),       # KWS's
    "c1_valid": (12, 9, 1, 3, 5, 5, 2, 1, "VALID", "RELU6"),  # clamped outputs
    "c2": (9, 11, 2, 6, 3, 3, 2, 2, "SAME", "RELU"),
    "c2_5x5": (8, 10, 2, 4, 5, 5, 1, 1, "SAME", "NONE"),
    "c4": (10, 9, 4, 8, 3, 3, 2, 2, "SAME", "RELU"),
    "c4_valid": (7, 12, 4, 2, 3, 5, 1, 2, "VALID", "NONE"),   # 4 pixels a row, even pixel step
    "c3_1xk": (5, 16, 3, 6, 1, 4, 1, 3, "SAME", "RELU"),      # one window row, pixel step 9
}


def _conv_model(path, h, w, c, oc, kh, kw, sh, sw, padding, act, seed):
    """A one-CONV_2D int8 model (per-channel weights) written with LiteRT's flatbuffer schema."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S

    rng = np.random.default_rng(seed)
    if padding == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
    else:
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    in_scale, in_zp = float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 100))
    w_scale = rng.uniform(0.002, 0.02, oc)
    out_scale = float(in_scale * w_scale.mean() * np.sqrt(kh * kw * c) * 150)  # outputs spread over the int8 range
    out_zp = -128 if act in ("RELU", "RELU6") else int(rng.integers(-20, 20))
    weights = rng.integers(-127, 128, (oc, kh, kw, c)).astype(np.int8)
    bias = rng.integers(-3000, 3000, oc).astype(np.int32)

    def buffer(data=None):
        b = S.BufferT()
        if data is not None:
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        return b

    def tensor(name, shape, kind, buf, scale, zp, axis=0):
        t = S.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), list(shape), kind, buf
        q = S.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = list(np.atleast_1d(scale)), list(np.atleast_1d(zp)), axis
        t.quantization = q
        return t

    m = S.ModelT()
    m.version, m.description = 3, b"tinycc first-layer test"
    m.buffers = [buffer(), buffer(), buffer(weights), buffer(bias), buffer()]
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.CONV_2D
    code.version = 3
    m.operatorCodes = [code]
    sg = S.SubGraphT()
    sg.tensors = [
        tensor("input", (1, h, w, c), S.TensorType.INT8, 1, in_scale, in_zp),
        tensor("weights", (oc, kh, kw, c), S.TensorType.INT8, 2, w_scale, np.zeros(oc, np.int64)),
        tensor("bias", (oc,), S.TensorType.INT32, 3, in_scale * w_scale, np.zeros(oc, np.int64)),
        tensor("output", (1, oh, ow, oc), S.TensorType.INT8, 4, out_scale, out_zp),
    ]
    sg.inputs, sg.outputs = [0], [3]
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType = S.BuiltinOptions.Conv2DOptions
    opts = S.Conv2DOptionsT()
    opts.padding = S.Padding.SAME if padding == "SAME" else S.Padding.VALID
    opts.strideH, opts.strideW = sh, sw
    opts.dilationHFactor = opts.dilationWFactor = 1
    opts.fusedActivationFunction = getattr(S.ActivationFunctionType, act)
    op.builtinOptions = opts
    sg.operators = [op]
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path


def _model(tmp_path, name):
    return _conv_model(tmp_path / f"first_{name}.tflite", *SHAPES[name], seed=sorted(SHAPES).index(name))


def _need_arm():
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")


def _kernels_c(tmp_path, name):
    return (tmp_path / "lib" / "src" / f"first_{name}_kernels.c").read_text()


@pytest.mark.parametrize("target", ["host", "mps2-an386", "mps2-an385"])
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_band_matches_litert(name, target, tmp_path):
    if target != "host":
        _need_arm()
    model = _model(tmp_path, name)
    report = verify(model, target, work_dir=tmp_path, knobs=BAND, sanitize=target == "host")
    assert report.ok, report.summary()
    assert "tinycc_first_conv_s8(" in _kernels_c(tmp_path, name)


@pytest.mark.parametrize("name", ["vww", "resnet", "kws", "c1_valid", "c4_valid"])
@pytest.mark.parametrize("rounding,opt,target", [("double", "-O2", "mps2-an386"), ("litert", "-O0", "mps2-an386"),
                                                 ("litert", "-Os", "mps2-an500")])
def test_band_roundings_and_c_loops(name, rounding, opt, target, tmp_path):
    """Double rounding (mode 4: doubled weights and bias, mode 6 in the tiles) against TFLM; the
    DSP cores' C loops (-O0, no assembly); the Cortex-M7."""
    _need_arm()
    model = _model(tmp_path, name)
    report = verify(model, target, rounding=rounding, opt=opt, work_dir=tmp_path)
    assert report.ok, report.summary()
    assert "tinycc_first_conv_s8(" in _kernels_c(tmp_path, name)


def test_band_is_the_dsp_default_and_its_scratch(tmp_path):
    """The M4 takes the band kernel by default (its scratch: 2 KH rows of band_len int16), the
    M3 the im2col; rows of fewer than 3 pixels and 5 or more channels keep the im2col."""
    model = _model(tmp_path, "vww")
    m4 = compile_model(model, "mps2-an386", tmp_path / "m4", measure_code=False)
    src = (m4.out_dir / "src" / "first_vww_kernels.c").read_text()
    assert "tinycc_first_conv_s8(" in src and "few channels band" in src
    length = first_layer.band_len((8, 3, 3, 3), (1, 7, 7, 8), (2, 2))
    assert length == 6 * 6 + 10 and f"arena scratch {2 * 3 * length * 2} bytes" in src
    m3 = compile_model(model, "mps2-an385", tmp_path / "m3", measure_code=False)
    assert "tinycc_first_conv_s8(" not in (m3.out_dir / "src" / "first_vww_kernels.c").read_text()
    assert not first_layer.applies((1, 5, 4, 3), (8, 3, 3, 3), (1, 3, 2, 8), (2, 2), (1, 1))  # 2 pixels a row
    assert not first_layer.applies((1, 9, 9, 5), (8, 3, 3, 5), (1, 9, 9, 8), (1, 1), (1, 1))  # 5 channels
    assert not first_layer.applies((1, 9, 9, 3), (8, 3, 3, 3), (1, 5, 5, 8), (1, 1), (2, 2))  # dilation


def test_band_weights_stream():
    """The stream as tinycc_first_tile's C loop reads it: per channel pair both biases, then per
    window row the pair's words (4 values of o0, 4 of o1; an odd last word 2 and 2), then (m, e, r)
    per channel; an odd channel count repeats the last channel."""
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (3, 2, 3, 3)).astype(np.int8)  # 9 values a row: W2 = 5
    bias, mult = np.array([10, -20, 30], np.int32), np.array([7, 8, 9], np.int32)
    shift = np.array([1, 2, 3, 4, 5, 6], np.int32)  # (e, r) pairs
    s = first_layer.band_weights(w, bias, mult, shift)
    block = 2 * first_layer.pair_block_words(w.shape)
    assert s.size == 2 * block
    pairs = s.reshape(2, block)
    assert pairs[1, :4].view(np.int32).tolist() == [30, 30]
    assert pairs[0, -12:].view(np.int32).tolist() == [7, 1, 2, 8, 3, 4]
    row = pairs[0, 4:4 + 20]  # ky = 0 of channels 0 and 1
    flat = w.reshape(3, 2, 9)
    assert row[:8].tolist() == [*flat[0, 0, :4], *flat[1, 0, :4]]
    assert row[16:].tolist() == [flat[0, 0, 8], 0, flat[1, 0, 8], 0]
    doubled = first_layer.band_weights(w, bias * 2, mult, shift, doubled=True).reshape(2, block)
    assert doubled[0, 4:24].tolist() == [2 * v for v in row.tolist()]
    plain = first_layer.band_weights(w, bias, mult, np.array([-3, -4, -5], np.int32)).reshape(2, block)
    assert plain[0, -12:].view(np.int32).tolist() == [7, -3, 0, 8, -4, 0]
