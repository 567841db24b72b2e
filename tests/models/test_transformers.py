import pytest
import torch

from backend.models.mask_transformer import GenerationCancelled, SemanticsModulatedAttention
from backend.models.sampling import top_k_filter


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_mask_aux_forward_and_generate(tiny, encoder):
    m = tiny.mask_aux
    cond = encoder.encode(["a", "b"])
    ids = torch.randint(0, 24, (2, 7))
    logits = m(ids, cond, torch.tensor([7, 4]))
    assert logits.shape == (2, 7, 24)
    out = m.generate(cond, torch.tensor([7, 4]), timesteps=4, generator=_gen(0))
    assert out.shape == (2, 7)
    assert (out[1, 4:] == -1).all() and (out[0] >= 0).all() and (out[1, :4] >= 0).all()
    assert int(out.max()) < 24
    again = m.generate(cond, torch.tensor([7, 4]), timesteps=4, generator=_gen(0))
    assert torch.equal(out, again)
    other = m.generate(cond, torch.tensor([7, 4]), timesteps=4, generator=_gen(1))
    assert not torch.equal(out, other)


def test_padding_does_not_change_real_logits(tiny, encoder):
    m = tiny.mask_aux
    cond = encoder.encode(["x"])
    ids = torch.randint(0, 24, (1, 5))
    a = m(ids, cond, torch.tensor([5]))
    padded = torch.cat([ids, torch.full((1, 3), m.pad_id)], 1)
    b = m(padded, cond, torch.tensor([5]))
    assert torch.allclose(a, b[:, :5], atol=1e-5)


@pytest.mark.parametrize("mask_keys", [False, True])
def test_ts_padding_keys(encoder, retriever, mask_keys):
    """With ``mask_padding_keys`` (the project's models) the real tokens' logits do not depend on how much
    padding follows them; without it (the released model's behaviour) they do."""
    from backend.models.mask_transformer import MaskTransformer2D
    from tests.models.conftest import tiny_tcfg

    torch.manual_seed(0)
    m = MaskTransformer2D(tiny_tcfg("ts", False, mask_padding_keys=mask_keys)).eval()
    torch.nn.init.normal_(m.output_process.poseFinal.weight, 0, 1.0)
    cond = encoder.encode(["x"])
    re = retriever(["x"]).re_dict
    ids = torch.randint(0, 20, (1, 4, 6))
    with torch.no_grad():
        a = m(ids, cond, torch.tensor([4]), re)
        padded = torch.cat([ids, torch.full((1, 12, 6), m.pad_id)], 1)
        b = m(padded, cond, torch.tensor([4]), re)[:, :24]
    assert torch.allclose(a, b, atol=1e-5) == mask_keys


def test_ssta_gating_and_shapes():
    torch.manual_seed(0)
    layer = SemanticsModulatedAttention(32, 32, 4, 0.0).eval()
    x = torch.randn(2, 10, 32)
    xf = torch.randn(2, 1, 32)
    mask = torch.ones(2, 10, 1)
    rm, rt = torch.randn(2, 1, 32), torch.randn(2, 1, 32)
    y99 = layer(x, xf, mask, torch.full((2, 1, 1), 99.), rm, rt)
    assert y99.shape == (2, 10, 32)
    # with retrieval gated off (code 9) the retrieved *text* no longer matters
    y9a = layer(x, xf, mask, torch.full((2, 1, 1), 9.), rm, rt)
    y9b = layer(x, xf, mask, torch.full((2, 1, 1), 9.), rm, torch.randn(2, 1, 32))
    assert torch.allclose(y9a, y9b, atol=1e-6)
    assert not torch.allclose(y99, y9a, atol=1e-4)
    # code 0 ignores the text too
    y0a = layer(x, xf, mask, torch.zeros(2, 1, 1), rm, rt)
    y0b = layer(x, torch.randn(2, 1, 32), mask, torch.zeros(2, 1, 1), rm, rt)
    assert torch.allclose(y0a, y0b, atol=1e-6)
    # queries of masked-out positions are zero -> uniform attention over keys
    m2 = mask.clone()
    m2[:, 5:] = 0
    y = layer(x, xf, m2, torch.full((2, 1, 1), 99.), rm, rt)
    assert torch.allclose(y[:, 5], y[:, 6], atol=1e-5)


def test_mask_ts_generate_rag_on_off(tiny, encoder, retriever):
    m = tiny.mask_ts
    cond = encoder.encode(["walk", "run"])
    re = retriever(["walk", "run"]).re_dict
    lens = torch.tensor([5, 3])
    a = m.generate(cond, lens, re, timesteps=3, generator=_gen(3))
    assert a.shape == (2, 5, 6)
    assert (a[1, 3:] == -1).all() and (a[0] >= 0).all()
    assert torch.equal(a, m.generate(cond, lens, re, timesteps=3, generator=_gen(3)))
    off = m.generate(cond, lens, re, timesteps=3, generator=_gen(3), use_retrieval=False)
    assert not torch.equal(a, off)
    none = m.generate(cond, lens, None, timesteps=3, generator=_gen(3))
    assert torch.equal(off, none)  # off == no retrieval input at all
    with pytest.raises(ValueError, match="re_dict"):
        m.generate(cond, lens, {"re_text": torch.zeros(2, 1, 1, 7), "re_motion": torch.zeros(2, 1, 1, 7)})


def test_cfg_scale_changes_logits(tiny, encoder):
    m = tiny.mask_aux
    cond = encoder.encode(["a"])
    ids = torch.full((1, 4), m.mask_id)
    pad = torch.zeros(1, 4, dtype=torch.bool)
    l1 = m.guided_logits(ids, cond, pad, 1.0)
    l4 = m.guided_logits(ids, cond, pad, 4.0)
    un = m.trans_forward(ids, cond, pad, force_mask=True)
    assert torch.allclose(l4, un + 4 * (l1 - un), atol=1e-4)


def test_residual_generate(tiny, encoder):
    cond = encoder.encode(["a", "b"])
    lens = torch.tensor([4, 2])
    base = torch.tensor([[1, 2, 3, 4], [5, 6, -1, -1]])
    out = tiny.res_aux.generate(base, cond, lens, generator=_gen(0))
    assert out.shape == (2, 4, 3)
    assert torch.equal(out[..., 0], base)
    assert (out[1, 2:] == -1).all() and (out[0] >= 0).all() and int(out.max()) < 24
    base2 = torch.randint(0, 20, (2, 4, 6))
    base2[1, 2:] = -1
    out2 = tiny.res_ts.generate(base2, cond, lens, generator=_gen(0))
    assert out2.shape == (2, 4, 6, 3)
    assert (out2[1, 2:] == -1).all() and (out2[0] >= 0).all() and int(out2.max()) < 20
    assert torch.equal(out2, tiny.res_ts.generate(base2, cond, lens, generator=_gen(0)))
    one = tiny.res_ts.generate(base2, cond, lens, generator=_gen(0), num_layers=1)
    assert one.shape == (2, 4, 6, 2)


def test_residual_forward_shapes(tiny, encoder):
    cond = encoder.encode(["a"])
    h = torch.randn(1, 5, 16)
    assert tiny.res_aux(h, 1, cond, torch.tensor([5])).shape == (1, 5, 25)
    h2 = torch.randn(1, 5, 6, 16)
    assert tiny.res_ts(h2, 2, cond, torch.tensor([3])).shape == (1, 30, 22)


def test_top_k_filter_keeps_ceiling_fraction():
    x = torch.arange(20.).reshape(1, 20)
    f = top_k_filter(x, 0.9)
    assert torch.isfinite(f).sum() == 2 and torch.equal(f[0, -2:], x[0, -2:])


def test_cancel_between_steps(tiny, encoder):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(GenerationCancelled):
        tiny.mask_aux.generate(encoder.encode(["a"]), torch.tensor([4]), timesteps=10, generator=_gen(0),
                               cancelled=cancelled)
    assert len(calls) == 3


def test_length_estimator_sampling(tiny, encoder):
    est = tiny.length_estimator
    emb = encoder.encode(["a", "b"])
    with torch.no_grad():
        est.output[-1].bias.zero_()
        est.output[-1].bias[12] = 50.0  # all mass on 12 tokens
    n = est.sample_tokens(emb, _gen(0))
    assert n.tolist() == [12, 12]
    with torch.no_grad():
        est.output[-1].bias.zero_()
    a = est.sample_tokens(emb.repeat(50, 1), _gen(1))
    assert torch.equal(a, est.sample_tokens(emb.repeat(50, 1), _gen(1)))
    assert len(set(a.tolist())) > 5  # near-uniform logits spread over many lengths


def test_residual_layers_sample_varied_tokens_that_change_the_motion(tiny, encoder):
    """Regression: every residual token used to come out 0 (NaN Gumbel noise, argmax 0). The residual layers
    must draw varied tokens, and the decoded motion must differ from the one decoded with them zeroed."""
    g = torch.Generator().manual_seed(0)
    cond = encoder.encode(["a person walks", "a person jumps"])
    m_lens = torch.tensor([10, 7])
    base_aux = tiny.mask_aux.generate(cond, m_lens, 3, 4.0, 1.0, 0.9, g)
    base_ts = tiny.mask_ts.generate(cond, m_lens, None, 3, 4.0, 1.0, 0.9, g, use_retrieval=False)
    all_aux = tiny.res_aux.generate(base_aux, cond, m_lens, 1.0, 0.5, 5.0, g)
    all_ts = tiny.res_ts.generate(base_ts, cond, m_lens, 1.0, 0.5, 5.0, g)
    assert all_aux.shape == (2, 10, 3) and all_ts.shape == (2, 10, 6, 3)
    for ids, n_codes in ((all_aux, 24), (all_ts, 20)):
        real = ids[..., 1:][ids[..., 1:] >= 0]
        assert real.numel() > 0 and (real < n_codes).all()
        assert len(torch.unique(real)) >= 5, torch.unique(real)   # not constant
        assert (real != 0).float().mean() > 0.5                   # and not mostly the code 0
    def zero_residuals(ids):  # what the bug produced: code 0 on every residual layer (padding stays -1)
        z = ids.clone()
        z[..., 1:] = torch.where(z[..., 1:] >= 0, 0, z[..., 1:])
        return z

    with torch.no_grad():
        full = tiny.vq.decode(all_aux, all_ts)
        zeroed = tiny.vq.decode(zero_residuals(all_aux), zero_residuals(all_ts))
    assert torch.isfinite(full).all()
    assert (full - zeroed).abs().max() > 1e-3
