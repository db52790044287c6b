"""spacy_cortex.core.loss: dropout setting and the optimizer the trainers share."""
import pytest
import torch

from spacy_cortex.core.loss import adamw, set_dropout
from spacy_cortex.core.model import CortexModel


def test_set_dropout_reaches_every_layer_and_the_config(tiny_checkpoint):
    model = CortexModel.from_path(tiny_checkpoint).hf_model
    set_dropout(model, 0.0)
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0.0 for m in dropouts)
    assert all(m.dropout_prob == 0.0 for m in model.modules() if hasattr(m, "dropout_prob"))
    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.0
    set_dropout(model, 0.25)
    assert all(m.p == 0.25 for m in dropouts)
    with pytest.raises(ValueError, match="probability in \\[0, 1\\)"):
        set_dropout(model, 1.0)


def test_adamw_steps_like_torch_adamw():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(8, 4)
    ours, reference = adamw(a.parameters(), 1e-2), torch.optim.AdamW(b.parameters(), lr=1e-2)
    for module, optimizer in ((a, ours), (b, reference)):
        for _ in range(3):
            module(x).square().mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


def test_an_adamw_step_makes_the_bf16_inference_copy_follow(tiny_checkpoint):
    # the fused kernel writes the weights behind autograd's back; evaluation during training
    # (spacy train's dev scores, model-best) must see the new weights, not the cast copy
    model = CortexModel.from_path(tiny_checkpoint, precision="bf16")
    stale = model.inference_model
    optimizer = adamw(model.hf_model.parameters(), 1e-2)
    model.hf_model(input_ids=torch.tensor([[2, 5, 6, 3]])).logits[..., 1].sum().backward()
    optimizer.step()
    fresh = model.inference_model
    assert fresh is not stale
    assert torch.equal(fresh.classifier.bias, model.hf_model.classifier.bias.to(torch.bfloat16))
