"""Editing support in the transformers: ``keep``/``init_ids`` fix given tokens; without them nothing changes."""

import pytest
import torch


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _cond(encoder):
    return encoder.encode(["a person walks", "a person jumps"])


LENS = torch.tensor([9, 6])


@pytest.mark.parametrize("cond_scale", [1.0, 3.0])
def test_keep_nothing_is_plain_generation(tiny, encoder, retriever, cond_scale):
    cond = _cond(encoder)
    none_kept = torch.zeros(2, 9, dtype=torch.bool)
    junk = torch.randint(0, 20, (2, 9, 6))
    a = tiny.mask_aux.generate(cond, LENS, 4, cond_scale, generator=_gen(3))
    b = tiny.mask_aux.generate(cond, LENS, 4, cond_scale, generator=_gen(3), keep=none_kept, init_ids=junk[..., 0])
    assert torch.equal(a, b)
    re = retriever(["x", "y"]).re_dict
    a2 = tiny.mask_ts.generate(cond, LENS, re, 4, cond_scale, generator=_gen(3))
    b2 = tiny.mask_ts.generate(cond, LENS, re, 4, cond_scale, generator=_gen(3),
                               keep=none_kept[..., None].expand(2, 9, 6), init_ids=junk)
    assert torch.equal(a2, b2)
    ra = tiny.res_ts.generate(a2, cond, LENS, generator=_gen(1))
    rb = tiny.res_ts.generate(a2, cond, LENS, generator=_gen(1), keep=none_kept[..., None].expand(2, 9, 6),
                              init_ids=torch.zeros(2, 9, 6, 3, dtype=torch.long))
    assert torch.equal(ra, rb)


def test_kept_tokens_stay_and_hole_is_filled(tiny, encoder):
    cond = _cond(encoder)
    init = torch.randint(0, 24, (2, 9))
    keep = torch.zeros(2, 9, dtype=torch.bool)
    keep[:, :3] = True
    keep[:, 5:] = True  # row 1 has 6 tokens: its hole is 3..4
    for steps in (1, 2, 5):
        out = tiny.mask_aux.generate(cond, LENS, steps, 2.0, generator=_gen(0), keep=keep, init_ids=init)
        assert torch.equal(out[0, :3], init[0, :3]) and torch.equal(out[0, 5:], init[0, 5:])
        assert torch.equal(out[1, :3], init[1, :3]) and torch.equal(out[1, 5:6], init[1, 5:6])
        assert (out[1, 6:] == -1).all()
        assert (out[:, 3:5] >= 0).all() and (out[:, 3:5] < 24).all()  # every hole token is unmasked
    # the model sees the kept tokens as context and only the hole masked, from the first step on
    seen = []
    real = tiny.mask_aux.guided_logits
    tiny.mask_aux.guided_logits = lambda ids, *a: seen.append(ids.clone()) or real(ids, *a)
    try:
        tiny.mask_aux.generate(cond, LENS, 3, 2.0, generator=_gen(0), keep=keep, init_ids=init)
    finally:
        del tiny.mask_aux.guided_logits
    first = seen[0]
    assert torch.equal(first[0, :3], init[0, :3]) and torch.equal(first[0, 5:], init[0, 5:])
    assert (first[:, 3:5] == tiny.mask_aux.mask_id).all()
    assert all(torch.equal(x[keep & (torch.arange(9) < LENS[:, None])],
                           init[keep & (torch.arange(9) < LENS[:, None])]) for x in seen)


def test_a_row_without_a_hole_is_returned_as_given(tiny, encoder, retriever):
    cond = _cond(encoder)
    init = torch.randint(0, 20, (2, 9, 6))
    keep = torch.ones(2, 9, 6, dtype=torch.bool)
    keep[1, 2, 4] = False
    out = tiny.mask_ts.generate(cond, LENS, retriever(["x", "y"]).re_dict, 3, 2.0, generator=_gen(0), keep=keep,
                                init_ids=init)
    assert torch.equal(out[0], init[0])
    assert torch.equal(out[1, :6][keep[1, :6]], init[1, :6][keep[1, :6]]) and 0 <= int(out[1, 2, 4]) < 20
    assert (out[1, 6:] == -1).all()


def test_residual_keep_takes_the_given_layers(tiny, encoder):
    cond = _cond(encoder)
    lens = torch.tensor([5, 3])
    init = torch.randint(0, 20, (2, 5, 6, 3))
    keep = torch.zeros(2, 5, 6, dtype=torch.bool)
    keep[:, :2] = True
    keep[:, :, 0] = True
    base = init[..., 0].clone()
    base[1, 3:] = -1
    out = tiny.res_ts.generate(base, cond, lens, generator=_gen(0), keep=keep, init_ids=init)
    real = torch.zeros(2, 5, dtype=torch.bool)
    real[0] = True
    real[1, :3] = True
    k = keep & real[..., None]
    assert torch.equal(out[k], init[k])
    assert (out[1, 3:] == -1).all()
    hole = ~keep & real[..., None]
    assert not torch.equal(out[hole][:, 1:], init[hole][:, 1:])  # residual layers regenerated in the hole
    out1 = tiny.res_aux.generate(init[:, :, 0, 0], cond, torch.tensor([5, 5]), generator=_gen(0), keep=keep[..., 0],
                                 init_ids=init[:, :, 0, :])
    assert torch.equal(out1[keep[..., 0]], init[:, :, 0, :][keep[..., 0]])
