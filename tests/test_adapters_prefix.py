"""Issue 14 part 6: bottleneck adapters, prefix tuning and ftcore's own LoRA, on the tiny model.

Adapters start at the pretrained function and learn the toy task; ftcore's prefix tuning puts its
key/value prefixes in every layer's attention (eager and sdpa) with the mask widened to match;
ftcore.engine.lora matches peft's LoRA in trainable parameters and outputs."""
import copy
import math

import pytest
import torch

from ftcore import ConfigError, RunConfig, build, train
from ftcore.engine.adapters import BottleneckAdapter, add_adapters
from ftcore.engine.layers import layer_groups
from ftcore.engine.lora import LoRALinear, apply_lora, merge_lora
from ftcore.engine.models import load_model
from ftcore.engine.peft_methods import trainable_summary
from ftcore.engine.prefix import add_prefixes

X = {"input_ids": torch.tensor([[101, 2204, 2143, 1996, 102], [101, 2919, 2143, 102, 0]]),
     "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])}


def _logits(model):
    with torch.no_grad():
        return model.eval()(**X).logits


def _trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------------------ adapters
@pytest.mark.parametrize("placement", ["houlsby", "pfeiffer"])
def test_adapters_start_at_the_pretrained_function(placement):
    plain = load_model("tiny-bert", 2, seed=0)
    model = copy.deepcopy(plain)
    add_adapters(model, 8, placement)
    assert torch.equal(_logits(model), _logits(plain))
    adapters = [m for m in model.modules() if isinstance(m, BottleneckAdapter)]
    assert len(adapters) == (4 if placement == "houlsby" else 2)  # 2 layers x (attention, FFN) or FFN only
    assert all(torch.count_nonzero(a.up.weight) == 0 for a in adapters)


def test_adapter_trainable_parameters_are_adapters_layernorms_and_head(tiny):
    trainer = build(tiny.replace(peft="adapter", adapter_size=8))
    model, d, k = trainer.model, 32, 8
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(".adapter." in n or "LayerNorm" in n or n.startswith("classifier") for n in names)
    per_adapter = d * k + k + k * d + d
    layer_norms = 5 * 2 * d  # embeddings + 2 per layer x 2 layers, weight and bias
    head = d * 2 + 2
    assert _trainable(model) == 4 * per_adapter + layer_norms + head
    assert [n for n in names if "pooler" in n] == []  # the pooler stays frozen, as with peft="lora"
    pf = build(tiny.replace(peft="adapter", adapter_size=8, adapter_placement="pfeiffer"))
    assert _trainable(pf.model) == 2 * per_adapter + head
    # adapters sit in their layer's group (layer-wise LRs, gradient norms and the freeze map see them)
    groups = {g.name: [n for n, _ in g.params] for g in layer_groups(model)}
    assert any(".adapter." in n for n in groups["layer.0"]) and any(".adapter." in n for n in groups["layer.1"])


def test_adapter_run_learns_the_toy_task(tiny):
    # tiny-bert is random: its sub-layer outputs (what an adapter transforms) are ~0.1 in size and its
    # random pooler squashes the rest, so frozen-encoder methods learn slowly on it (head-only training
    # reaches ~0.8 here too). Mean pooling, a high LR and 8 epochs (~2 s) let the adapters show learning.
    cfg = tiny.replace(peft="adapter", adapter_size=16, epochs=8, lr=3e-2, pooling="mean")
    base = {n: p.detach().clone() for n, p in build(cfg).model.named_parameters()}
    trainer = build(cfg)
    rec = train(cfg, trainer=trainer)
    assert rec.metric("accuracy", "test") > 0.7
    assert rec.metric("loss", "test") < 0.6  # from ln 2 = 0.69 at the start
    assert all(torch.count_nonzero(m.up.weight) > 0 for m in trainer.model.modules()
               if isinstance(m, BottleneckAdapter))
    frozen_same = [n for n, p in trainer.model.named_parameters()
                   if ".adapter." not in n and "LayerNorm" not in n and not n.startswith("classifier")
                   and not torch.equal(p.detach().cpu(), base[n])]
    assert frozen_same == []  # the pretrained weights did not move


def test_adapter_config_and_save_refused(tmp_path, tiny):
    with pytest.raises(ConfigError, match="adapter_size"):
        RunConfig(peft="adapter", adapter_size=0)
    with pytest.raises(ConfigError, match="adapter_placement"):
        RunConfig(adapter_placement="middle")
    from ftcore.engine.export import ExportError, train_and_save
    with pytest.raises(ExportError, match="cannot be merged"):
        train_and_save(tiny.replace(peft="adapter"), tmp_path / "m")


def test_new_fields_leave_old_run_ids_alone():
    from ftcore.engine.runs import run_id
    cfg = RunConfig(peft="lora")
    assert "adapter_size" not in cfg.identity_dict() and "adapter_placement" not in cfg.identity_dict()
    assert run_id(cfg) == run_id(cfg.replace(adapter_size=64, adapter_placement="houlsby"))
    assert run_id(cfg) != run_id(cfg.replace(adapter_size=32))


# ------------------------------------------------------------------------------------ prefix tuning
def _prefixed(impl="sdpa", tokens=4):
    plain = load_model("tiny-bert", 2, seed=0)
    plain.set_attn_implementation(impl)
    model = copy.deepcopy(plain)
    add_prefixes(model, tokens)
    return plain, model


def _hidden(model, **inputs):
    with torch.no_grad():
        return model.eval()(**(inputs or X), output_hidden_states=True).hidden_states[-1]


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_prefixes_reach_every_layers_attention(impl, monkeypatch):
    plain, model = _prefixed(impl)
    assert not torch.allclose(_hidden(model), _hidden(plain), atol=1e-3)  # prefixes change attention
    # every layer's prefix rows of the MLP's output layer get a gradient: each layer attends to its own
    model.train(False)
    model(**X).logits.sum().backward()
    enc, d = model.prefix_encoder, 32
    for i in range(2):
        rows = enc.mlp[2].weight.grad[2 * d * i: 2 * d * (i + 1)]
        assert torch.count_nonzero(rows[:d]) > 0 and torch.count_nonzero(rows[d:]) > 0, i  # key and value
    # changing one layer's prefixes (only the top one) changes the output
    top = copy.deepcopy(model)
    with torch.no_grad():
        top.prefix_encoder.mlp[2].bias[2 * d:] += 1.0
    assert not torch.allclose(_hidden(top), _hidden(model), atol=1e-3)
    # with the prefix columns of the mask closed, the prefixed model computes the plain model's function
    from ftcore.engine import prefix

    def closed(mask, tokens):  # the prefix columns masked out: False (sdpa) or the dtype's minimum (eager)
        shut = False if mask.dtype == torch.bool else torch.finfo(mask.dtype).min
        return torch.cat([torch.full((*mask.shape[:-1], tokens), shut, dtype=mask.dtype), mask], dim=-1)
    monkeypatch.setattr(prefix, "extend_mask", closed)
    assert torch.allclose(_hidden(model), _hidden(plain), atol=1e-6)  # (X is padded: the mask is not None)


def test_every_layer_attends_to_the_prefixes():
    plain, model = _prefixed("eager", tokens=4)
    with torch.no_grad():
        att = model.eval()(**X, output_attentions=True).attentions
    assert len(att) == 2
    for a in att:  # [batch, heads, queries, 4 prefixes + 5 tokens]: the queries are the tokens' own
        assert a.shape == (2, 2, 5, 4 + 5)
        assert torch.allclose(a.sum(-1), torch.ones(2, 2, 5))
        assert (a[..., :4].sum(-1) > 0.01).all()  # every token puts weight on the prefixes
        assert torch.all(a[1, :, :, -1] == 0)  # the pad token stays masked


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_prefix_padding_and_implementations_agree(impl):
    _, model = _prefixed(impl)
    _, other = _prefixed("sdpa" if impl == "eager" else "eager")
    with torch.no_grad():
        padded = model.eval()(**X).logits
        alone = model(input_ids=X["input_ids"][1:, :4]).logits  # no mask at all (None)
        ones = model(input_ids=X["input_ids"][:1], attention_mask=X["attention_mask"][:1]).logits
        assert torch.allclose(padded[1], alone[0], atol=1e-6)  # the mask's prefix columns line up
        assert torch.allclose(padded[0], ones[0], atol=1e-6)
        assert torch.allclose(padded, other.eval()(**X).logits, atol=1e-5)  # eager = sdpa


def test_prefix_trainable_parameters_are_the_prefix_encoder_and_head(tiny):
    from ftcore.engine.prefix import PREFIX_HIDDEN, PrefixEncoder

    trainer = build(tiny.replace(peft="prefix", prompt_tokens=4))
    model, P, d, L, h = trainer.model, 4, 32, 2, PREFIX_HIDDEN
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(n.startswith(("prefix_encoder.", "classifier.")) for n in names), names
    reparam = P * d + (d * h + h) + (h * 2 * L * d + 2 * L * d)  # P', Linear(d, h), Linear(h, 2Ld)
    assert _trainable(model) == reparam + (d * 2 + 2)
    assert model.prefix_encoder().shape == (L, 2, P, d)  # what is kept after training: 2·L·P·d numbers
    # the formula at all-MiniLM-L6-v2's shape (6 layers, 384 wide, 12 heads), 20 prefix positions
    mini = PrefixEncoder(20, 384, 6)
    assert sum(p.numel() for p in mini.parameters()) == 20 * 384 + 384 * h + h + h * 4608 + 4608 == 1_290_496
    assert mini().numel() == 92_160


def test_prefix_run_trains_only_the_prefixes_and_head(tiny):
    cfg = tiny.replace(peft="prefix", prompt_tokens=4)
    base = {n: p.detach().clone() for n, p in build(cfg).model.named_parameters()}
    trainer = build(cfg)
    rec = train(cfg, trainer=trainer)
    assert rec.status == "completed" and len(rec.steps) > 0
    assert rec.steps["loss"].map(math.isfinite).all() and math.isfinite(rec.metric("loss", "test"))
    moved = {n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach().cpu(), base[n])}
    assert moved and all(n.startswith(("prefix_encoder.", "classifier.")) for n in moved), moved
    assert any(n.startswith("prefix_encoder.") for n in moved)


def test_prefix_refusals(tmp_path, tiny):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from ftcore.engine.export import ExportError, save_model, train_and_save
    from ftcore.engine.peft_methods import apply_peft

    other = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2,
                                                                 hidden_dim=64))
    with pytest.raises(ConfigError, match="BERT-style self-attention.*'prompt', 'adapter' or 'lora'"):
        apply_peft(other, tiny.replace(peft="prefix"))
    with pytest.raises(ExportError, match="prefix"):
        train_and_save(tiny.replace(peft="prefix"), tmp_path / "m")
    with pytest.raises(ExportError, match="key/value prefixes"):  # a model built by hand is refused too
        save_model(build(tiny.replace(peft="prefix", prompt_tokens=4)).model, tmp_path / "m2",
                   cfg=tiny, label_names=["neg", "pos"])


# ------------------------------------------------------------------------------ ftcore's own LoRA
def _peft_lora(plain, r=4, alpha=8.0, targets=("query", "value")):
    from peft import LoraConfig, TaskType, get_peft_model
    return get_peft_model(copy.deepcopy(plain), LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha,
                                                          lora_dropout=0.0, target_modules=list(targets)))


@pytest.mark.parametrize("targets", [("query", "value"), ("query", "key", "value", "dense")])
def test_own_lora_matches_peft(targets):
    plain = load_model("tiny-bert", 2, seed=0)
    ref = _peft_lora(plain, targets=targets)
    own = copy.deepcopy(plain)
    wrapped = apply_lora(own, 4, 8.0, 0.0, targets)
    own.classifier.requires_grad_(True)  # the head trains (peft: modules_to_save)
    assert _trainable(own) == _trainable(ref)
    assert len(wrapped) == sum(1 for n, _ in ref.named_modules() if n.endswith(".lora_A"))
    # at init B = 0: both compute the pretrained function
    assert torch.equal(_logits(own), _logits(plain))
    assert torch.allclose(_logits(ref), _logits(plain), atol=1e-6)
    # non-zero updates copied from peft: identical outputs
    torch.manual_seed(1)
    mods = dict(ref.named_modules())
    for name in wrapped:
        lora = mods[f"base_model.model.{name}"]
        torch.nn.init.normal_(lora.lora_B["default"].weight, std=0.5)
        layer = own.get_submodule(name)
        assert isinstance(layer, LoRALinear) and layer.scaling == lora.scaling["default"]
        with torch.no_grad():
            layer.A.copy_(lora.lora_A["default"].weight)
            layer.B.copy_(lora.lora_B["default"].weight)
    out_own, out_ref = _logits(own), _logits(ref)
    assert not torch.allclose(out_own, _logits(plain), atol=1e-3)
    assert torch.allclose(out_own, out_ref, atol=1e-5)
    # merged into plain Linear layers: the same function
    assert torch.allclose(_logits(merge_lora(own)), out_ref, atol=1e-5)


def test_lora_scratch_in_the_engine_matches_peft_lora(tiny):
    ours = build(tiny.replace(peft="lora_scratch", lora_r=4))
    theirs = build(tiny.replace(peft="lora", lora_r=4))
    assert trainable_summary(ours.model)["trainable_params"] == trainable_summary(theirs.model)["trainable_params"]
    rec = train(tiny.replace(peft="lora_scratch", lora_r=4, epochs=6, lr=3e-2))  # peft="lora": 0.82 here
    assert rec.metric("accuracy", "test") > 0.7


def test_help_shows_the_new_fields():
    import contextlib
    import io

    from ftcore.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        main(["run", "--help"])
    text = buf.getvalue()
    for word in ("--adapter-size", "--adapter-placement", "lora_scratch", "prefix"):
        assert word in text, word


def test_lora_scratch_saves_merged(tmp_path, tiny):
    from ftcore.engine.export import load_saved, save_model
    cfg = tiny.replace(peft="lora_scratch", lora_r=4)
    trainer = build(cfg)
    torch.manual_seed(2)
    for m in trainer.model.modules():
        if isinstance(m, LoRALinear):
            torch.nn.init.normal_(m.B, std=0.5)
    path = save_model(trainer.model, tmp_path / "m", cfg=cfg, label_names=["neg", "pos"])
    loaded, _, info = load_saved(path)
    assert info["peft"] == "lora_scratch" and not any("lora" in n or n.endswith(".A") for n, _ in loaded.named_parameters())
    assert torch.allclose(_logits(loaded), _logits(trainer.model), atol=1e-5)
