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


def build_wan_animate(root: Path) -> Path:
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanAnimateTransformer3DModel
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, UMT5Config,
                              UMT5EncoderModel)

    folder = root / "wan-animate"
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=32, d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                           num_heads=4, relative_attention_num_buckets=8))
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
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanAnimate2Transformer3DModel
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    folder = root / "wan-animate-2"
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=32, d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                           num_heads=4, relative_attention_num_buckets=8))
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
