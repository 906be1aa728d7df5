"""The diffusion maths of models.sdm restated by hand on tiny tensors: schedules, q_sample, v, DDIM, guidance."""

from __future__ import annotations

import math

import pytest
import torch

from models.sdm import (
    NoiseSchedule,
    beta_schedule,
    classifier_free_guidance,
    ddim_sample,
    ddim_step,
    ddim_timesteps,
)


def test_linear_betas_and_alphas_cumprod_match_the_hand_formula() -> None:
    betas = beta_schedule("linear", 100)  # scale 1000/100 = 10: from 1e-3 to 0.2
    assert betas.dtype == torch.float64
    assert betas[[0, 1, 99]].tolist() == pytest.approx([1e-3, 1e-3 + (0.2 - 1e-3) / 99, 0.2], rel=1e-12)
    with pytest.raises(ValueError, match="more than 20 timesteps"):
        beta_schedule("linear", 20)
    s = NoiseSchedule("linear", 1000)
    expected = math.prod(1 - (1e-4 + (0.02 - 1e-4) * i / 999) for i in range(11))
    assert s.alphas_cumprod[10].item() == pytest.approx(expected, rel=1e-12)
    assert bool((s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all())


def test_cosine_schedule_follows_nichol_and_dhariwal() -> None:
    T = 10
    f = [math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(T + 1)]
    expected_betas = [min(1 - f[t + 1] / f[t], 0.999) for t in range(T)]
    assert beta_schedule("cosine", T).tolist() == pytest.approx(expected_betas, rel=1e-12)
    s = NoiseSchedule("cosine", T)
    # ᾱ_t = f(t+1)/f(0) wherever no beta was clipped
    assert s.alphas_cumprod[:-1].tolist() == pytest.approx([f[t + 1] / f[0] for t in range(T - 1)], rel=1e-9)
    assert expected_betas[-1] == 0.999  # the last beta is the clipped one


def test_unknown_schedule_and_prediction_are_refused() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        beta_schedule("quadratic", 10)
    s = NoiseSchedule("cosine", 10)
    with pytest.raises(ValueError, match="prediction must be one of"):
        s.target(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long), torch.zeros(1, 1), "x0")


def test_q_sample_and_v_target_on_hand_values() -> None:
    s = NoiseSchedule("linear", 100)
    t = torch.tensor([3, 70])
    a = s.alphas_cumprod[t]
    x0 = torch.tensor([[0.5, -1.0], [0.25, 1.0]])
    eps = torch.tensor([[1.0, 2.0], [-0.5, 0.0]])
    xt = s.q_sample(x0, t, eps)
    for i in range(2):
        for j in range(2):
            assert xt[i, j].item() == pytest.approx(math.sqrt(a[i]) * x0[i, j] + math.sqrt(1 - a[i]) * eps[i, j],
                                                    rel=1e-6)
    v = s.v_target(x0, t, eps)
    assert v[1, 0].item() == pytest.approx(math.sqrt(a[1]) * -0.5 - math.sqrt(1 - a[1]) * 0.25, rel=1e-6)
    assert torch.equal(s.target(x0, t, eps, "eps"), eps)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_split_recovers_x0_and_eps_from_either_prediction(prediction: str) -> None:
    s = NoiseSchedule("cosine", 50)
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64), torch.randn(3, 2, 4, 4, generator=gen,
                                                                                       dtype=torch.float64)
    t = torch.tensor([0, 20, 49])
    xt = s.q_sample(x0, t, eps)
    got_x0, got_eps = s.split(s.target(x0, t, eps, prediction), xt, t, prediction)
    torch.testing.assert_close(got_x0, x0)
    torch.testing.assert_close(got_eps, eps)


def test_classifier_free_guidance_combines_exactly_as_defined() -> None:
    cond, uncond = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.25, 1.0, 0.5])
    for s in (0.0, 1.0, 1.5, 3.0):
        expected = torch.tensor([u + s * (c - u) for c, u in zip(cond.tolist(), uncond.tolist())])
        assert torch.equal(classifier_free_guidance(cond, uncond, s), expected)
    assert torch.equal(classifier_free_guidance(cond, uncond, 1.0), cond)
    assert torch.equal(classifier_free_guidance(cond, uncond, 0.0), uncond)


def test_ddim_step_against_an_independent_formula() -> None:
    x0, eps = torch.tensor([[0.3, -0.7]]), torch.tensor([[1.2, 0.4]])
    a, ap = 0.36, 0.81
    got = ddim_step(x0, eps, torch.tensor([a]), torch.tensor([ap]))
    expected = [math.sqrt(ap) * x + math.sqrt(1 - ap) * e for x, e in zip([0.3, -0.7], [1.2, 0.4])]
    assert got[0].tolist() == pytest.approx(expected, rel=1e-6)
    # eta = 1 with noise z: sigma² = (1-ap)/(1-a)·(1 - a/ap)
    z = torch.tensor([[0.5, -1.0]])
    sigma = math.sqrt((1 - ap) / (1 - a) * (1 - a / ap))
    got = ddim_step(x0, eps, torch.tensor([a]), torch.tensor([ap]), eta=1.0, noise=z)
    expected = [math.sqrt(ap) * x + math.sqrt(1 - ap - sigma ** 2) * e + sigma * n
                for x, e, n in zip([0.3, -0.7], [1.2, 0.4], [0.5, -1.0])]
    assert got[0].tolist() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="needs noise"):
        ddim_step(x0, eps, torch.tensor([a]), torch.tensor([ap]), eta=1.0)


def test_ddim_timesteps_are_spread_evenly_last_first() -> None:
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))
    assert ddim_timesteps(1000, 2) == [999, 0]
    assert ddim_timesteps(1000, 1) == [0]
    with pytest.raises(ValueError, match="steps must be between 1 and"):
        ddim_timesteps(10, 11)


def test_ddim_sample_with_an_exact_denoiser_returns_the_clean_image() -> None:
    """A denoiser that knows x0 gives back x0 in any number of steps (eta 0)."""
    s = NoiseSchedule("linear", 100)
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(2, 3, 4, 4, generator=gen) * 2 - 1
    noise = torch.randn(2, 3, 4, 4, generator=gen)

    def oracle(x: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = s.alpha_bar(t).to(x).reshape(-1, 1, 1, 1)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()

    for steps in (1, 4):
        out = ddim_sample(oracle, s, noise, torch.ones(2, 1, 4, 4), steps=steps)
        torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_ddim_sample_restated_step_by_step_with_guidance() -> None:
    """Two steps of guided DDIM written out by hand for a denoiser that reads its mask."""
    s = NoiseSchedule("cosine", 10)
    x = torch.tensor([[[[0.5]]]])
    mask = torch.tensor([[[[2.0]]]])

    def denoiser(xt: torch.Tensor, t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return 0.1 * xt + 0.05 * m + 0.001 * t.reshape(-1, 1, 1, 1)

    got = ddim_sample(denoiser, s, x, mask, steps=2, guidance=2.0, clip=False)
    value = 0.5
    times = [9, 0]
    for i, t in enumerate(times):
        cond = 0.1 * value + 0.05 * 2.0 + 0.001 * t
        uncond = 0.1 * value + 0.001 * t
        eps = uncond + 2.0 * (cond - uncond)
        a = s.alphas_cumprod[t].item()
        x0 = (value - math.sqrt(1 - a) * eps) / math.sqrt(a)
        ap = s.alphas_cumprod[times[i + 1]].item() if i + 1 < len(times) else 1.0
        value = math.sqrt(ap) * x0 + math.sqrt(1 - ap) * eps
    assert got.item() == pytest.approx(value, rel=1e-5)


def test_guidance_one_calls_the_denoiser_once_per_step_and_others_batch_two() -> None:
    s = NoiseSchedule("cosine", 10)
    batches: list[int] = []

    def denoiser(x: torch.Tensor, t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        batches.append(x.shape[0])
        if x.shape[0] == 4:
            assert torch.equal(m[2:], torch.zeros_like(m[2:]))  # the unconditional half: all-zeros mask
        return torch.zeros_like(x)

    ddim_sample(denoiser, s, torch.randn(2, 3, 2, 2), torch.ones(2, 1, 2, 2), steps=3, guidance=1.0)
    ddim_sample(denoiser, s, torch.randn(2, 3, 2, 2), torch.ones(2, 1, 2, 2), steps=3, guidance=1.5)
    assert batches == [2, 2, 2, 4, 4, 4]
