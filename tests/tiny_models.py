"""Tiny randomly-initialised checkpoints of the real diffusers / transformers classes, saved in the
same layout as the public ones, so the backends load them through the same code as real weights.

Layouts written under ``root``:

* ``sd15/``            a Stable Diffusion 1.5-style pipeline folder (unet, vae, text_encoder, tokenizer,
                       scheduler, feature_extractor; model_index.json)
* ``openpose/``        a ControlNetModel matching that UNet
* ``ip/models/``       ``ip-adapter_sd15.safetensors`` and ``image_encoder/`` (as h94/IP-Adapter)
* ``motion/``          a MotionAdapter matching the UNet
* ``wan-animate/``     a WanAnimatePipeline folder
* ``wan-animate-2/``   the components of a Wan-Animate-2 modular pipeline (both presets load it)
* ``models.toml``      a models config pointing every backend at these folders

Everything is seeded: the same call writes the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# a tiny CLIP BPE vocabulary: enough for lower-case ASCII words, split letter by letter
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for ch in _LETTERS:
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)
    return tok


def _t5_like_tokenizer(folder: Path):
    """A word-level fast tokenizer with T5's special tokens (the real one is a sentencepiece model)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in ("a", "person", "dancing", "pointing", "walking", "blurry", "astronaut", "monkey"):
        vocab[word] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                  model_max_length=512)
    tok.save_pretrained(folder)
    return tok


# the component folders of a Stable Diffusion 1.5 pipeline and the classes that load them
SD15_COMPONENTS = {
    "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
    "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
    "scheduler": ["diffusers", "DDIMScheduler"], "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": [None, None], "image_encoder": [None, None], "requires_safety_checker": False,
}


def _model_index(folder: Path, pipeline: str, components: dict) -> None:
    """model_index.json: which class loads each component folder of a diffusers pipeline."""
    (folder / "model_index.json").write_text(json.dumps({"_class_name": pipeline, "_diffusers_version": "0.42.1",
                                                         **components}))


def build_sd15(root: Path) -> Path:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPImageProcessor, CLIPTextConfig, CLIPTextModel

    folder = root / "sd15"
    torch.manual_seed(0)
    # attention only in the lower-resolution block, two heads: the same code paths as a real UNet
    # at a fraction of the CPU time (self-attention over 16x16 latents instead of 32x32)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=2, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=2,
        attention_head_dim=2)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, norm_num_groups=2)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=5, vocab_size=64))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    unet.save_pretrained(folder / "unet")
    vae.save_pretrained(folder / "vae")
    text_encoder.save_pretrained(folder / "text_encoder")
    _clip_tokenizer(folder / "tokenizer")
    scheduler.save_pretrained(folder / "scheduler")
    CLIPImageProcessor(crop_size=32, size=32).save_pretrained(folder / "feature_extractor")
    _model_index(folder, "StableDiffusionPipeline", SD15_COMPONENTS)
    return folder


def build_openpose_controlnet(root: Path) -> Path:
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(0)
    cn = ControlNetModel(block_out_channels=(8, 16), layers_per_block=2, in_channels=4,
                         down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), cross_attention_dim=32,
                         conditioning_embedding_out_channels=(8, 16), norm_num_groups=2, attention_head_dim=2)
    # a new ControlNet's "zero convolutions" make it a no-op; give them weights, as training would
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for conv in [*cn.controlnet_down_blocks, cn.controlnet_mid_block, cn.controlnet_cond_embedding.conv_out]:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
    cn.save_pretrained(root / "openpose")
    return root / "openpose"


def build_ip_adapter(root: Path) -> Path:
    """IP-Adapter (SD 1.5 layout of h94/IP-Adapter): image projection + per-cross-attention k/v."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = root / "ip" / "models"
    torch.manual_seed(0)
    enc = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        intermediate_size=37, patch_size=4))
    enc.save_pretrained(folder / "image_encoder")
    unet = UNet2DConditionModel.from_pretrained(root / "sd15" / "unet")
    g = torch.Generator().manual_seed(0)
    tensors = {
        "image_proj.proj.weight": torch.randn(4 * 32, 32, generator=g) * 0.1,
        "image_proj.proj.bias": torch.zeros(4 * 32),
        "image_proj.norm.weight": torch.ones(32),
        "image_proj.norm.bias": torch.zeros(32),
    }
    key = 1
    blocks = dict(zip(("down_blocks", "up_blocks"), (unet.config.block_out_channels,
                                                      tuple(reversed(unet.config.block_out_channels)))))
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = unet.config.block_out_channels[-1]
        else:
            part, idx = name.split(".")[:2]
            hidden = blocks[part][int(idx)]
        for kv in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{key}.{kv}.weight"] = torch.randn(hidden, 32, generator=g) * 0.1
        key += 2
    save_file(tensors, str(folder / "ip-adapter_sd15.safetensors"))
    return folder


def build_motion_adapter(root: Path) -> Path:
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(0)
    adapter = MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=2, motion_norm_num_groups=2,
                            motion_num_attention_heads=4)
    adapter.save_pretrained(root / "motion")
    return root / "motion"


def _tiny_wan_vae_and_text_encoder():
    """The tiny Wan VAE and UMT5 text encoder both Wan-Animate pipelines load (each seeded 0)."""
    import torch
    from diffusers import AutoencoderKLWan
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=32, d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                           num_heads=4, relative_attention_num_buckets=8))
    return vae, text_encoder


def build_wan_animate(root: Path) -> Path:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanAnimateTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    folder = root / "wan-animate"
    vae, text_encoder = _tiny_wan_vae_and_text_encoder()
    torch.manual_seed(0)
    transformer = WanAnimateTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36,
        latent_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", image_dim=4, rope_max_seq_len=32,
        motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16}, motion_encoder_size=16,
        motion_style_dim=8, motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16,
        face_encoder_num_heads=2, inject_face_latents_blocks=2)
    torch.manual_seed(0)
    image_encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2,
                                                     num_attention_heads=2, image_size=4, intermediate_size=16,
                                                     patch_size=1))
    transformer.save_pretrained(folder / "transformer")
    vae.save_pretrained(folder / "vae")
    text_encoder.save_pretrained(folder / "text_encoder")
    _t5_like_tokenizer(folder / "tokenizer")
    image_encoder.save_pretrained(folder / "image_encoder")
    CLIPImageProcessor(crop_size=4, size=4).save_pretrained(folder / "image_processor")
    FlowMatchEulerDiscreteScheduler(shift=7.0).save_pretrained(folder / "scheduler")
    _model_index(folder, "WanAnimatePipeline", {
        "transformer": ["diffusers", "WanAnimateTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"],
        "text_encoder": ["transformers", "UMT5EncoderModel"], "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
        "image_encoder": ["transformers", "CLIPVisionModel"], "image_processor": ["transformers", "CLIPImageProcessor"],
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"]})
    return folder


def build_wan_animate_2(root: Path) -> Path:
    """The components WanAnimate2Blocks load, in a pipeline folder. The transformer projects CLIP
    features of width 1280 (hard-wired, as ViT-H's), so the image encoder is one ViT-H-wide layer."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanAnimate2Transformer3DModel
    from transformers import CLIPVisionConfig, CLIPVisionModel

    folder = root / "wan-animate-2"
    vae, text_encoder = _tiny_wan_vae_and_text_encoder()
    torch.manual_seed(0)
    # head size 12 splits into the three RoPE axes as the real 128 does; two layers (the real model
    # skips its tenth on the unconditional branch, which two layers never reach)
    transformer = WanAnimate2Transformer3DModel(dim=24, ffn_dim=32, freq_dim=256, text_dim=32, num_heads=2,
                                                num_layers=2, in_dim=36, out_dim=16)
    torch.manual_seed(0)
    # the pipeline resizes to 224 and reads the last hidden layer but one (here the embeddings)
    image_encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=1280, num_hidden_layers=1, num_attention_heads=2,
                                                     image_size=224, intermediate_size=16, patch_size=16))
    transformer.save_pretrained(folder / "transformer")
    vae.save_pretrained(folder / "vae")
    text_encoder.save_pretrained(folder / "text_encoder")
    _t5_like_tokenizer(folder / "tokenizer")
    image_encoder.save_pretrained(folder / "image_encoder")
    # a scheduler whose step() takes the generator the segment loop passes (UniPC's does not)
    FlowMatchEulerDiscreteScheduler(shift=5.0).save_pretrained(folder / "scheduler")
    _model_index(folder, "WanAnimate2ModularPipeline", {
        "transformer": ["diffusers", "WanAnimate2Transformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"],
        "text_encoder": ["transformers", "UMT5EncoderModel"], "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
        "image_encoder": ["transformers", "CLIPVisionModel"],
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"]})
    return folder


def build_all(root: Path) -> Path:
    """Write every tiny checkpoint under ``root`` and a models.toml that points at them; return it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    build_sd15(root)
    build_openpose_controlnet(root)
    build_ip_adapter(root)
    build_motion_adapter(root)
    build_wan_animate(root)
    build_wan_animate_2(root)
    sd, cn, ip, mo, wan, wan2 = (str(root / p) for p in ("sd15", "openpose", "ip", "motion", "wan-animate",
                                                         "wan-animate-2"))
    ip_adapter = f'{{ id = "{ip}", subfolder = "models", weight_name = "ip-adapter_sd15.safetensors" }}'
    image_encoder = f'{{ id = "{ip}", subfolder = "models/image_encoder" }}'
    config = root / "models.toml"
    config.write_text(
        f'[controlnet]\nbase = "{sd}"\ncontrolnet = "{cn}"\nip_adapter = {ip_adapter}\nimage_encoder = {image_encoder}\n\n'
        f'[animatediff]\nbase = "{sd}"\ncontrolnet = "{cn}"\nmotion_adapter = "{mo}"\nip_adapter = {ip_adapter}\n'
        f'image_encoder = {image_encoder}\n\n'
        f'[wan-animate]\npipeline = "{wan}"\n\n'
        f'[wan-animate-2]\npipeline = "{wan2}"\ndistilled = "{wan2}"\n')
    return config


# --- ONNX pose estimators (rtmw, dwpose) ---------------------------------------------------------
# Tiny graphs with the public models' signatures (input and output names, shapes, dtypes), whose
# outputs depend on the input image, so the estimators run them through exactly the code that runs
# the real ones. The detectors find the performer of the sample clip at ingest's default size (its
# frames scaled to 640 x 359: the detector's 640 x 640 input holds them unscaled); the pose models
# put a standing COCO-WholeBody body in the crop, moved by a bin or two by what the crop shows.

PERFORMER_BOX = (205.0, 20.0, 270.0, 172.0)  # x0, y0, x1, y1 in detector pixels
PASSER_BY_BOX = (528.0, 200.0, 546.0, 232.0)  # a smaller person on the right


def _onnx_model(nodes, inputs, outputs, inits, opset: int = 17):
    from onnx import helper

    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="motionlib-tests")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    import onnx

    onnx.checker.check_model(model)
    return model


def _tensor(name, array):
    from onnx import numpy_helper

    return numpy_helper.from_array(array, name)


def _input_mean(input_name: str, out: str, scale: float, offset: float):
    """Nodes: ``out`` [1, 1, 1] = (mean of the image / 255 + offset) * scale."""
    from onnx import helper

    return [
        helper.make_node("ReduceMean", [input_name], ["_m4"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["_m4", "_shape111"], ["_m3"]),
        helper.make_node("Div", ["_m3", "_255"], ["_m01"]),
        helper.make_node("Add", ["_m01", "_offset"], ["_mc"]),
        helper.make_node("Mul", ["_mc", "_scale"], [out]),
    ], [
        _tensor("_shape111", np.array([1, 1, 1], np.int64)), _tensor("_255", np.array(255.0, np.float32)),
        _tensor("_offset", np.array(offset, np.float32)), _tensor("_scale", np.array(scale, np.float32)),
    ]


def build_yolox_raw(path: Path, size: tuple[int, int] = (640, 640), boxes=None) -> Path:
    """DWPose's ``yolox_l.onnx`` signature: ``images`` [1, 3, 640, 640] -> ``output`` [1, 8400, 85]
    (YOLOX before NMS: per anchor, grid offsets, log sizes, objectness, 80 class scores). Each of
    ``boxes`` ((x0, y0, x1, y1), score) sits at the stride-32 anchor of its centre; a copy of the
    first, a little weaker, at the stride-16 anchor (NMS removes it); the image's mean brightness
    moves them by up to a pixel."""
    from onnx import TensorProto, helper

    H, W = size
    boxes = boxes or [(PERFORMER_BOX, 0.92), (PASSER_BY_BOX, 0.85)]
    cells = [(H // s, W // s, s) for s in (8, 16, 32)]
    n = sum(h * w for h, w, _ in cells)
    const = np.zeros((1, n, 85), np.float32)
    const[..., 2:4] = -4.0  # tiny boxes with zero scores everywhere else
    mask = np.zeros((1, n, 1), np.float32)

    def put(box, score, level):
        h, w, s = cells[level]
        base = sum(a * b for a, b, _ in cells[:level])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        gx, gy = int(cx // s), int(cy // s)
        k = base + gy * w + gx
        const[0, k, :4] = [cx / s - gx, cy / s - gy, np.log((box[2] - box[0]) / s), np.log((box[3] - box[1]) / s)]
        const[0, k, 4] = const[0, k, 5] = np.sqrt(score)
        mask[0, k, 0] = 1.0

    for i, (box, score) in enumerate(boxes):
        put(box, score, 2)
    shifted = tuple(v + 3.0 for v in boxes[0][0])
    put(shifted, boxes[0][1] - 0.1, 1)
    nodes, inits = _input_mean("images", "_delta", scale=0.02, offset=-0.5)
    nodes += [helper.make_node("Mul", ["_delta", "_mask"], ["_moved"]),
              helper.make_node("Add", ["_const", "_moved"], ["output"])]
    inits += [_tensor("_const", const), _tensor("_mask", mask)]
    model = _onnx_model(nodes, [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, H, W])],
                        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n, 85])], inits)
    path.parent.mkdir(parents=True, exist_ok=True)
    import onnx

    onnx.save(model, str(path))
    return path


def build_detector_nms(path: Path, size: tuple[int, int] = (640, 640), boxes=None) -> Path:
    """An mmdeploy end-to-end detector's signature (rtmlib's YOLOX-m Human-Art): ``input``
    [1, 3, 640, 640] -> ``dets`` [1, N, 5] (x0, y0, x1, y1, score) and ``labels`` [1, N] int64.
    The boxes: the performer, a smaller passer-by, a weak box (below any threshold) and a box of
    another class."""
    from onnx import TensorProto, helper

    H, W = size
    rows = [(*PERFORMER_BOX, 0.9), (*PASSER_BY_BOX, 0.8), (40.0, 40.0, 90.0, 90.0, 0.05), (300.0, 240.0, 420.0, 330.0, 0.9)]
    labels = np.array([[0, 0, 0, 56]], np.int64)  # the last one: a chair
    dets = np.array([rows], np.float32)
    mask = np.zeros_like(dets)
    mask[..., :4] = 1.0
    nodes, inits = _input_mean("input", "_delta", scale=2.0, offset=-0.5)
    nodes += [helper.make_node("Mul", ["_delta", "_mask"], ["_moved"]),
              helper.make_node("Add", ["_dets", "_moved"], ["dets"]),
              helper.make_node("Identity", ["_labels"], ["labels"])]
    inits += [_tensor("_dets", dets), _tensor("_mask", mask), _tensor("_labels", labels)]
    model = _onnx_model(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, H, W])],
                        [helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, len(rows), 5]),
                         helper.make_tensor_value_info("labels", TensorProto.INT64, [1, len(rows)])], inits)
    path.parent.mkdir(parents=True, exist_ok=True)
    import onnx

    onnx.save(model, str(path))
    return path


def wholebody_template() -> np.ndarray:
    """[133, 2] a person standing, facing the camera, in the (0-1) coordinates of a pose model's
    crop (the box grown by 1.25): COCO-WholeBody order."""
    body = [
        (0.50, 0.160), (0.52, 0.145), (0.48, 0.145), (0.545, 0.155), (0.455, 0.155),  # nose, eyes, ears
        (0.58, 0.27), (0.42, 0.27), (0.61, 0.42), (0.39, 0.42), (0.62, 0.55), (0.38, 0.55),  # arms
        (0.555, 0.55), (0.445, 0.55), (0.56, 0.71), (0.44, 0.71), (0.56, 0.87), (0.44, 0.87),  # legs
        (0.575, 0.90), (0.59, 0.895), (0.555, 0.885), (0.425, 0.90), (0.41, 0.895), (0.445, 0.885),  # feet
    ]
    face = []
    cx, cy, rx, ry = 0.50, 0.16, 0.035, 0.045
    for i in range(17):  # jaw: the performer's right (the picture's left) round the chin
        a = np.pi * (1 - i / 16)
        face.append((cx - rx * np.cos(np.pi - a), cy + ry * np.sin(a) * 0.9))
    for i in range(10):  # brows
        face.append((cx - 0.028 + 0.0062 * i, cy - 0.030))
    for i in range(9):  # nose bridge, nostrils
        face.append((cx, cy - 0.02 + 0.008 * i) if i < 4 else (cx - 0.01 + 0.005 * (i - 4), cy + 0.012))
    for side in (-1, 1):  # eyes
        for i in range(6):
            a = 2 * np.pi * i / 6
            face.append((cx + side * 0.018 + 0.007 * np.cos(a), cy - 0.015 + 0.003 * np.sin(a)))
    for i in range(20):  # lips
        a = 2 * np.pi * i / (12 if i < 12 else 8)
        r = 0.014 if i < 12 else 0.009
        face.append((cx + r * np.cos(np.pi + a), cy + 0.025 + 0.4 * r * np.sin(a)))
    hands = []
    for wx, side in ((0.62, 1), (0.38, -1)):  # fingers hanging down from each wrist
        hands.append((wx, 0.555))
        for f in range(5):
            for j in range(4):
                hands.append((wx + side * (0.012 * (f - 2)), 0.565 + 0.012 * (j + 1)))
    pts = np.array(body + face + hands, np.float64)
    assert pts.shape == (133, 2)
    return pts


def build_pose_simcc(path: Path, size: tuple[int, int] = (384, 288), keypoints: int = 133, channels: int = 3,
                     split: float = 2.0, seed: int = 0) -> Path:
    """DWPose's / RTMW's signature: ``input`` [1, 3, H, W] -> ``simcc_x`` [1, K, 2W] and ``simcc_y``
    [1, K, 2H]. Each keypoint's SimCC is a bump at the template's place (``wholebody_template``)
    plus the crop's mean column (row) profile weighted per keypoint, through a sigmoid: the maxima
    move with what the crop shows, and their heights (the confidences) differ per body part."""
    from onnx import TensorProto, helper

    H, W = size
    Lx, Ly = int(round(split * W)), int(round(split * H))
    rng = np.random.default_rng(seed)
    template = wholebody_template()
    if keypoints != 133:
        template = template[np.arange(keypoints) % 133]
    height = np.concatenate([np.full(23, 3.0), np.full(68, 1.8), np.full(42, 1.2)])[np.arange(keypoints) % 133]
    height = height + rng.uniform(-0.3, 0.3, keypoints)

    def bumps(centres, length):
        i = np.arange(length)[None, :]
        return (height[:, None] * np.exp(-0.5 * ((i - centres[:, None]) / 4.0) ** 2))[None].astype(np.float32)

    gx = bumps(template[:, 0] * Lx, Lx)
    gy = bumps(template[:, 1] * Ly, Ly)
    wx = rng.choice([-0.25, 0.25], size=(1, keypoints, 1)).astype(np.float32)
    wy = rng.choice([-0.25, 0.25], size=(1, keypoints, 1)).astype(np.float32)
    ux = np.zeros((W, Lx), np.float32)
    ux[np.arange(Lx) * W // Lx, np.arange(Lx)] = 1.0
    uy = np.zeros((H, Ly), np.float32)
    uy[np.arange(Ly) * H // Ly, np.arange(Ly)] = 1.0
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["_cols"], axes=[1, 2], keepdims=0),  # [1, W]
        helper.make_node("ReduceMean", ["input"], ["_rows"], axes=[1, 3], keepdims=0),  # [1, H]
        helper.make_node("MatMul", ["_cols", "_ux"], ["_px"]),
        helper.make_node("MatMul", ["_rows", "_uy"], ["_py"]),
        helper.make_node("Reshape", ["_px", "_sx"], ["_px3"]),
        helper.make_node("Reshape", ["_py", "_sy"], ["_py3"]),
        helper.make_node("Mul", ["_px3", "_wx"], ["_tx"]),
        helper.make_node("Mul", ["_py3", "_wy"], ["_ty"]),
        helper.make_node("Add", ["_tx", "_gx"], ["_lx"]),
        helper.make_node("Add", ["_ty", "_gy"], ["_ly"]),
        helper.make_node("Sigmoid", ["_lx"], ["simcc_x"]),
        helper.make_node("Sigmoid", ["_ly"], ["simcc_y"]),
    ]
    inits = [_tensor("_ux", ux), _tensor("_uy", uy), _tensor("_sx", np.array([1, 1, Lx], np.int64)),
             _tensor("_sy", np.array([1, 1, Ly], np.int64)), _tensor("_wx", wx), _tensor("_wy", wy),
             _tensor("_gx", gx), _tensor("_gy", gy)]
    model = _onnx_model(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, H, W])],
                        [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, keypoints, Lx]),
                         helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, keypoints, Ly])], inits)
    path.parent.mkdir(parents=True, exist_ok=True)
    import onnx

    onnx.save(model, str(path))
    return path


def _sdk_zip(onnx_file: Path, zip_path: Path, folder: str) -> Path:
    """An OpenMMLab ONNX SDK archive: ``FOLDER/end2end.onnx`` beside its ``deploy.json`` etc."""
    import zipfile

    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as z:
        z.write(onnx_file, f"{folder}/end2end.onnx")
        z.writestr(f"{folder}/deploy.json", json.dumps({"version": "tiny"}))
        z.writestr(f"{folder}/pipeline.json", json.dumps({"pipeline": {}}))
    return zip_path


def build_rtm_models(root: Path) -> Path:
    """Tiny stand-ins for both ONNX estimators under ``root`` and a models config naming them:

    * ``dwpose/``: ``yolox_l.onnx`` (YOLOX before NMS) and ``dw-ll_ucoco_384.onnx`` (384 x 288),
      the files DWPose publishes;
    * ``rtmw/``: the ONNX SDK archives rtmlib fetches, the detector with NMS (YOLOX-m Human-Art's
      signature) and RTMW's pose model (384 x 288), each ``end2end.onnx`` in a zip;
    * ``models.toml``: ``[dwpose]`` as a folder holding the usual file names, ``[rtmw]`` as files.
    """
    root = Path(root)
    build_yolox_raw(root / "dwpose" / "yolox_l.onnx")
    build_pose_simcc(root / "dwpose" / "dw-ll_ucoco_384.onnx", seed=0)
    det = build_detector_nms(root / "tmp" / "det.onnx")
    pose = build_pose_simcc(root / "tmp" / "pose.onnx", seed=1)
    det_zip = _sdk_zip(det, root / "rtmw" / "yolox_m_8xb8-300e_humanart-c2c7a14a.zip", "yolox_m_8xb8-300e_humanart")
    pose_zip = _sdk_zip(pose, root / "rtmw" / "rtmw-dw-x-l_simcc-cocktail14_270e-384x288_20231122.zip",
                        "rtmw-dw-x-l_simcc-cocktail14_270e-384x288")
    config = root / "models.toml"
    config.write_text(f'[dwpose]\ndetector = "{root / "dwpose"}"\npose = "{root / "dwpose"}"\n\n'
                      f'[rtmw]\ndetector = "{det_zip}"\npose = "{pose_zip}"\n')
    return config
