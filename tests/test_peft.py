"""PEFT: LoRA leaves base weights alone, merged = unmerged, prompt tuning and BitFit train what they say."""
import pytest
import torch

from ftcore import ConfigError, RunConfig, build, train
from ftcore.engine.layers import group_names, layer_groups


def test_lora_trains_adapters_and_head_only(tiny):
    trainer = build(tiny.replace(peft="lora", lora_r=4, epochs=1))
    base = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" not in n
            and "modules_to_save" not in n}
    trainer.fit()
    for n, p in trainer.model.named_parameters():
        if n in base:
            assert torch.equal(p, base[n]), n  # frozen base weights unchanged
    changed = [n for n, p in trainer.model.named_parameters() if "lora_B" in n and p.abs().sum() > 0]
    assert changed  # B starts at zero; training moved it
    assert group_names(trainer.model)[:1] == ["embeddings"]
    lora_in_layers = [n for g in layer_groups(trainer.model) if g.kind == "block" for n, _ in g.params if "lora_" in n]
    assert len(lora_in_layers) == 2 * 2 * 2  # 2 layers x (query, value) x (A, B)


def test_lora_merged_and_unmerged_outputs_agree(tiny):
    trainer = build(tiny.replace(peft="lora", lora_r=4, epochs=1, lr=1e-2))
    trainer.fit()
    model = trainer.model.eval()
    x = {"input_ids": torch.tensor([[101, 2204, 2143, 102], [101, 2919, 2143, 102]]),
         "attention_mask": torch.ones(2, 4, dtype=torch.long)}
    with torch.no_grad():
        unmerged = model(**x).logits
        merged_model = model.merge_and_unload()
        merged = merged_model(**x).logits
    assert torch.allclose(unmerged, merged, atol=1e-5)
    assert not any("lora_" in n for n, _ in merged_model.named_parameters())


def test_prompt_tuning_and_bitfit_report_trainable_share(tiny):
    rec = train(tiny.replace(peft="prompt", prompt_tokens=4, epochs=1))
    assert 0 < rec.summary["trainable_pct_at_end"] < 5
    assert rec.layer_state.set_index("group").loc["prompt", "trainable"]
    bit = build(tiny.replace(peft="bitfit", epochs=1))
    trainable = [n for n, p in bit.model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith(".bias") or n.startswith("classifier") for n in trainable)


def test_peft_config_errors():
    with pytest.raises(ConfigError, match="peft"):
        RunConfig(peft="adapterx")
    with pytest.raises(ConfigError, match="freeze"):
        RunConfig(peft="lora", freeze="head_only")


def test_base_model_is_evaluable_with_adapters_disabled(tiny):
    from ftcore.engine.peft_methods import adapters_disabled
    from ftcore.engine.models import load_model
    trainer = build(tiny.replace(peft="lora", lora_r=4, epochs=1, lr=1e-2))
    trainer.fit()
    model = trainer.model.eval()
    x = {"input_ids": torch.tensor([[101, 2204, 2143, 102]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    plain = load_model("tiny-bert", 2, seed=tiny.seed).eval()
    # The trained head differs from a fresh one, so compare the encoder's pooled output instead.
    with torch.no_grad(), adapters_disabled(model):
        off = model.get_base_model().bert(**x).pooler_output
    with torch.no_grad():
        on = model.get_base_model().bert(**x).pooler_output
        ref = plain.bert(**x).pooler_output
    assert torch.allclose(off, ref, atol=1e-6) and not torch.allclose(on, ref, atol=1e-6)
