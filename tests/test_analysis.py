"""analysis/: the estimators against brute force and known answers, and a fast coverage simulation
(the full one, 1,000 draws per scenario, is bench/statistics_coverage.py)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from analysis.card import COMMITTED_MODEL, CardError, card_path, confusion, matrices
from analysis.clustered import (
    ClusterSums,
    raw_shares,
    share_covariance,
    small_sample_stretch,
    t_p_value,
    t_quantile,
    wilson,
)
from analysis.compare import bootstrap_p_values, holm, raw_differences, welch_degrees_of_freedom
from analysis.correction import Confusion, correct, corrected_shares, equality_solution, simplex_least_squares
from analysis.report import comparison, with_intervals
from analysis.simulation import Scenario, classify, coverage, coverage_given_card, draw_images, null_comparisons
from core.vocabulary import EMOTIONS
from models.weights import DEFAULT_MODEL_PATH

K = len(EMOTIONS)
CARD = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())["confusion_matrices"]
FER = np.array(CARD["fer2013_publictest"], dtype=float)
WILD = np.array(CARD["wild_calibration"], dtype=float)
SOCIAL = np.array([0.08, 0.015, 0.06, 0.36, 0.11, 0.095, 0.28])  # bench/generate_faces.py's mix


def brute_force_covariance(per_image: np.ndarray) -> np.ndarray:
    """The linearised ratio-estimator covariance written out image by image."""
    per_image = per_image[per_image.sum(axis=1) > 0]
    sizes, faces, images = per_image.sum(axis=1), per_image.sum(), len(per_image)
    shares = per_image.sum(axis=0) / faces
    residuals = per_image - np.outer(sizes, shares)
    return images / (images - 1) * residuals.T @ residuals / faces**2


def test_covariance_from_sums_equals_the_image_by_image_formula() -> None:
    rng = np.random.default_rng(1)
    per_image = rng.poisson(0.6, size=(300, K)) * (rng.random((300, 1)) < 0.8)
    sums = ClusterSums.from_image_counts(per_image)
    assert sums.images == int((per_image.sum(axis=1) > 0).sum())
    np.testing.assert_allclose(share_covariance(sums), brute_force_covariance(per_image), rtol=1e-12, atol=1e-15)
    # Sums of disjoint sets add up to the sums of their union.
    first, second = ClusterSums.from_image_counts(per_image[:100]), ClusterSums.from_image_counts(per_image[100:])
    np.testing.assert_allclose((first + second).cross, sums.cross)


def test_one_face_per_image_is_wilson_and_clustering_widens() -> None:
    single = np.eye(K)[np.repeat(np.arange(K), [40, 5, 10, 300, 50, 25, 570])]  # 1,000 images of one face
    raw = raw_shares(ClusterSums.from_image_counts(single))
    low, high = wilson(raw.share, np.full(K, 1000.0))
    np.testing.assert_allclose(raw.design_effect, 1000 / 999)
    np.testing.assert_allclose(raw.low, low, atol=2e-4)
    np.testing.assert_allclose(raw.high, high, atol=2e-4)
    # The same faces five to an image, every image showing one expression: worth 200 faces, not 1,000.
    grouped = ClusterSums.from_image_counts(5 * np.eye(K)[np.repeat(np.arange(K), [8, 1, 2, 60, 10, 5, 114])])
    clustered = raw_shares(grouped)
    np.testing.assert_allclose(clustered.share, raw.share)
    np.testing.assert_allclose(clustered.design_effect, 5 * 200 / 199)
    assert np.all(clustered.high - clustered.low > 2 * (raw.high - raw.low))


def test_no_faces_and_one_image() -> None:
    empty = raw_shares(ClusterSums.empty(K))
    assert empty.share.sum() == 0 and list(empty.low) == [0.0] * K and list(empty.high) == [1.0] * K
    one = raw_shares(ClusterSums.from_image_counts(np.array([[3, 0, 0, 2, 0, 0, 0]])))
    assert one.high[0] - one.low[0] > 0.85  # one photo is one observation, however many faces


def brute_force_simplex_least_squares(gram: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Every support, the best feasible equality solution: exact for 7 classes."""
    best, best_value = None, np.inf
    for size in range(1, K + 1):
        for support in itertools.combinations(range(K), size):
            free = np.zeros((1, K), dtype=bool)
            free[0, list(support)] = True
            x = equality_solution(gram[None], linear[None], free)[0][0]
            value = 0.5 * x @ gram @ x - linear @ x
            if (x >= -1e-12).all() and value < best_value - 1e-15:
                best, best_value = x, value
    assert best is not None
    return best


def test_active_set_solver_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    matrices_ = rng.dirichlet(np.full(K, 0.4), size=(80, K))
    shares = rng.dirichlet(np.full(K, 0.5), size=80)
    grams = matrices_ @ matrices_.transpose(0, 2, 1)
    linears = np.einsum("btp,bp->bt", matrices_, shares)
    solved = simplex_least_squares(grams, linears)
    np.testing.assert_allclose(solved.sum(axis=1), 1.0)
    assert (solved >= 0).all()
    for index in range(80):
        np.testing.assert_allclose(
            solved[index], brute_force_simplex_least_squares(grams[index], linears[index]), atol=1e-9
        )
    # A start on another support reaches the same solutions.
    np.testing.assert_allclose(simplex_least_squares(grams, linears, np.eye(K)[np.arange(80) % K]), solved, atol=1e-9)


def test_correction_inverts_the_matrix_when_it_can() -> None:
    matrix = FER / FER.sum(axis=1, keepdims=True)
    truth = SOCIAL / SOCIAL.sum()
    np.testing.assert_allclose(correct(matrix, matrix.T @ truth), truth, atol=1e-9)
    # A boundary answer stays a distribution.
    fixed = correct(matrix, np.eye(K)[1])
    assert fixed.min() >= 0 and abs(fixed.sum() - 1) < 1e-12


def sums_of(rng: np.random.Generator, truth: np.ndarray, matrix: np.ndarray, images: int) -> ClusterSums:
    scenario = Scenario("test", truth, images, 1.5, 3.0)
    return ClusterSums.from_image_counts(classify(rng, draw_images(rng, scenario), matrix))


def test_corrected_shares_are_deterministic_and_carry_both_errors() -> None:
    rng = np.random.default_rng(3)
    measured = Confusion("fer", FER)
    raw = raw_shares(sums_of(rng, SOCIAL / SOCIAL.sum(), measured.mean, 400))
    first, second = corrected_shares([raw, raw], measured, streams=[7, 7])
    assert first is not None and second is not None
    np.testing.assert_array_equal(first.low, second.low)
    assert np.all(first.low <= first.share + 1e-12) and np.all(first.share <= first.high + 1e-12)
    # Ten times the calibration faces narrows the interval; ten times the faces analysed does too.
    precise = corrected_shares([raw], Confusion("fer x10", FER * 10))[0]
    assert precise is not None and np.mean(precise.high - precise.low) < np.mean(first.high - first.low)
    # An emotion never seen in a few faces still gets an upper bound above zero.
    few = raw_shares(ClusterSums.from_image_counts(np.eye(K)[[0, 0, 4, 4, 6, 6, 6, 1]]))
    sparse = corrected_shares([few], measured)[0]
    assert sparse is not None and sparse.high[EMOTIONS.index("happy")] > 0.05


def test_t_quantiles_and_the_small_sample_stretch_of_raw_intervals() -> None:
    """Student's t at 97.5 % against the tables; a set of m images is a t with m - 1 degrees of freedom."""
    tables = {1: 12.7062, 2: 4.3027, 3: 3.1824, 5: 2.5706, 10: 2.2281, 39: 2.0227, 399: 1.9659}
    for freedom, value in tables.items():
        assert t_quantile(freedom) == pytest.approx(value, abs=1e-4)
    assert t_quantile(0.5) == np.inf and t_quantile(np.inf) == pytest.approx(1.959964)
    assert t_p_value(2.0227, 1.0, 39) == pytest.approx(0.05, abs=1e-4) and t_p_value(0.0, 0.0, 5) == 1.0
    assert small_sample_stretch(1) == 1.0 and small_sample_stretch(400) < 1.004 < small_sample_stretch(40)
    # Five images: Wilson at the effective size shrunk by (z / t_4)^2, so wider than without the stretch.
    few = ClusterSums.from_image_counts(np.eye(K)[[0, 3, 3, 6, 6]] * 2)
    raw = raw_shares(few)
    low, high = wilson(raw.share, 10 / raw.design_effect / small_sample_stretch(5) ** 2)
    np.testing.assert_allclose(raw.low, low)
    np.testing.assert_allclose(raw.high, high)
    unstretched_low, unstretched_high = wilson(raw.share, 10 / raw.design_effect)
    assert np.all(raw.high - raw.low > unstretched_high - unstretched_low)


def test_each_emotions_draws_solve_its_own_equation_with_the_others_at_the_estimate() -> None:
    """Per draw and emotion t: row t of Mbar^-T M_b^T pi = Mbar^-T q_b holds with pi_s (s != t) at the estimate;
    with a thin row, those intervals are narrower than the ones of draws solved for all emotions at once."""
    rng = np.random.default_rng(8)
    measured = Confusion("wild", WILD, FER, effective_faces=confusion(None, "wild_calibration").effective_faces)
    raw = raw_shares(sums_of(rng, SOCIAL / SOCIAL.sum(), measured.mean, 400))
    sampled = measured.sampled_shares(raw, 3)
    estimate = correct(measured.mean, raw.share)
    solved = measured.emotion_solved_draws(sampled, estimate)
    system = np.einsum("tr,bsr->bts", measured.mean_inverse, measured.draws)  # Mbar^-T M_b^T
    right = sampled @ measured.mean_inverse.T
    for emotion in range(K):
        pi = np.broadcast_to(estimate, (measured.replicates, K)).copy()
        pi[:, emotion] = solved[:, emotion]
        inside = (solved[:, emotion] > -1) & (solved[:, emotion] < 2)
        np.testing.assert_allclose(
            np.einsum("bs,bs->b", system[:, emotion], pi)[inside], right[inside, emotion], atol=1e-9
        )
    together = np.linalg.solve(measured.draws.transpose(0, 2, 1), sampled[..., None])[..., 0]  # M_b^-T q_b
    together = np.percentile(together, [2.5, 97.5], axis=0)
    alone = np.percentile(solved, [2.5, 97.5], axis=0)
    assert np.mean(alone[1] - alone[0]) < np.mean(together[1] - together[0])


def test_corrected_shares_stay_finite_when_matrix_draws_are_singular() -> None:
    """Rows without faces and almost no prior draw as near one-hot rows, some alike: nearly singular
    matrices, for the point estimate's active-set method and the replicates' solves. No interval is NaN."""
    counts = np.diag([60.0, 0, 0, 60, 0, 0, 60])
    thin = Confusion("thin", counts, None, prior_faces=0.05, replicates=200)
    sums = ClusterSums.from_image_counts(np.random.default_rng(3).multinomial(3, np.full(7, 1 / 7), size=300))
    result = corrected_shares([raw_shares(sums)], thin)[0]
    assert result is not None
    assert np.isfinite(result.replicates).all() and np.isfinite(result.low).all() and np.isfinite(result.high).all()
    assert (result.low >= 0).all() and (result.high <= 1).all() and (result.low <= result.share).all()


def test_a_rare_shares_negative_replicates_stay_negative_and_only_the_interval_is_cut() -> None:
    """No replicate is pushed into the simplex: a rare emotion's negative replicates stay negative instead of
    taking their mass from every other emotion, and only the interval is cut to [0, 1]."""
    rng = np.random.default_rng(5)
    measured = Confusion("fer", FER)
    news = np.array([0.03, 0.0, 0.0, 0.33, 0.02, 0.04, 0.58])  # no disgust, no fear: their raw shares are leaks
    raw = raw_shares(sums_of(rng, news, measured.mean, 300))
    result = corrected_shares([raw], measured, streams=[9])[0]
    assert result is not None
    fear = EMOTIONS.index("fear")
    assert (result.replicates[:, fear] < 0).mean() > 0.1 and result.low[fear] == 0.0
    # Centred on the unconstrained solution, not pulled up by the zeros of the constrained one.
    unconstrained = np.linalg.solve(measured.mean.T, raw.share)
    np.testing.assert_allclose(np.median(result.replicates, axis=0), unconstrained, atol=0.01)


def test_holm_and_bootstrap_p_values() -> None:
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, 0.03, 0.5])), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(holm(np.array([0.2, 0.001])), [0.2, 0.002])
    replicates = np.concatenate([np.full((990, 1), 0.1), np.full((10, 1), -0.1)])
    assert bootstrap_p_values(replicates)[0] == pytest.approx(2 * 11 / 1001)
    assert bootstrap_p_values(np.zeros((100, 1)))[0] == 1.0


def test_raw_differences_test_what_they_should() -> None:
    rng = np.random.default_rng(4)
    matrix = FER / FER.sum(axis=1, keepdims=True)
    happy_more = SOCIAL + np.eye(K)[EMOTIONS.index("happy")] * 0.2
    a = raw_shares(sums_of(rng, happy_more / happy_more.sum(), matrix, 2000))
    b = raw_shares(sums_of(rng, SOCIAL / SOCIAL.sum(), matrix, 2000))
    same = raw_shares(sums_of(rng, SOCIAL / SOCIAL.sum(), matrix, 2000))
    assert raw_differences(a, b).significant()[EMOTIONS.index("happy")]
    assert not raw_differences(b, same).significant().any()


def test_raw_differences_of_few_images_are_t_intervals_with_welchs_degrees_of_freedom() -> None:
    """Two sets of 8 and 30 images: per emotion the half-width is t at Welch-Satterthwaite's degrees of freedom times
    the summed standard error, wider than the normal one, and the degrees of freedom lie between the smaller set's
    and the two sets' together; the p-value is the t test's, so zero leaves the interval exactly when p < 0.05."""
    rng = np.random.default_rng(5)
    matrix = FER / FER.sum(axis=1, keepdims=True)
    small, large = (raw_shares(sums_of(rng, SOCIAL / SOCIAL.sum(), matrix, images)) for images in (8, 30))
    freedom = welch_degrees_of_freedom(small, large)
    assert np.all((freedom >= 7 - 1e-9) & (freedom <= 36 + 1e-9)), freedom
    difference = raw_differences(small, large)
    error = np.sqrt(np.diag(small.covariance) + np.diag(large.covariance))
    seen = error > 0
    assert seen.sum() >= 5
    np.testing.assert_allclose((difference.high - difference.low)[seen] / 2, t_quantile(freedom[seen]) * error[seen])
    assert np.all((difference.high - difference.low)[seen] / 2 > 1.96 * error[seen])
    outside = (difference.low > 0) | (difference.high < 0)
    np.testing.assert_array_equal(outside[seen], difference.p_value[seen] < 0.05)


def test_fast_coverage_on_a_well_measured_matrix() -> None:
    """150 draws: each raw and corrected interval holds its target in 88-99.5 % of them (the bench runs 1,000)."""
    result = coverage(Scenario("social", SOCIAL / SOCIAL.sum(), 300, 1.5, 3.0), FER, FER, draws=150, seed=11)
    assert np.all((result.raw_covered >= 0.88) & (result.raw_covered <= 0.995)), result.raw_covered
    assert np.all((result.corrected_covered >= 0.88) & (result.corrected_covered <= 0.995)), result.corrected_covered
    assert np.all(np.abs(result.corrected_bias) < 0.01), result.corrected_bias


def test_fast_coverage_given_the_shipped_card() -> None:
    """The bench's check on the API's own real-photo correction (effective sizes, the prior, fear without
    faces): 150 worlds whose true matrix the card allows; every interval holds its target in 88-99.5 %."""
    result = coverage_given_card(
        Scenario("social", SOCIAL / SOCIAL.sum(), 300, 1.5, 3.0), confusion(None, "wild_calibration"), 150, 13
    )
    assert np.all((result.raw_covered >= 0.88) & (result.raw_covered <= 0.995)), result.raw_covered
    assert np.all((result.corrected_covered >= 0.88) & (result.corrected_covered <= 0.995)), result.corrected_covered
    assert np.all(np.abs(result.corrected_bias) < 0.01), result.corrected_bias


def test_a_card_that_claims_too_much_fails_the_check() -> None:
    """What the check catches: corrected intervals that take a thin matrix (the real-photo counts) as known
    to a hundred times its faces miss the truth the thin matrix allows far more than 5 % of the time."""
    thin = confusion(None, "wild_calibration")
    overconfident = Confusion("overconfident", thin.row_counts * 100, FER, prior_faces=1000)
    scenario = Scenario("social", SOCIAL / SOCIAL.sum(), 300, 1.5, 3.0)
    result = coverage_given_card(scenario, thin, 150, 14, corrected_with=overconfident)
    assert result.corrected_covered.mean() < 0.9 and result.corrected_covered.min() < 0.8, result.corrected_covered


def test_one_population_compared_with_itself_is_rarely_called_different() -> None:
    """/compare's corrected differences on two sets of one population: after Holm, any emotion is called
    different in at most about 5 % of worlds. Sampling both sets with the same draws (what separate streams
    prevent) leaves only the matrix's error, which cancels in a difference: the intervals then miss zero far
    more often."""
    scenario = Scenario("social", SOCIAL / SOCIAL.sum(), 150, 1.5, 3.0)
    card = confusion(None, "wild_calibration")
    honest = null_comparisons(scenario, card, 150, 15)
    assert honest.any_significant <= 0.1 and honest.zero_inside.mean() >= 0.92, honest
    assert honest.raw_any_significant <= 0.1 and honest.raw_zero_inside.mean() >= 0.92, honest
    shared = null_comparisons(scenario, card, 100, 15, independent_streams=False)
    assert shared.any_significant > honest.any_significant and shared.zero_inside.mean() < 0.88, shared


def test_the_correction_removes_a_classifiers_pull_towards_neutral() -> None:
    """A classifier that reads 40 % of every other expression as neutral (600 calibration faces a row) biases
    the raw neutral share by about 28 points on the social mix; the corrected estimate is within 1.5 points."""
    neutral = EMOTIONS.index("neutral")
    pulled = 0.6 * np.eye(K) + 0.4 * np.eye(K)[neutral]
    pulled[neutral] = np.eye(K)[neutral]
    result = coverage(Scenario("social", SOCIAL / SOCIAL.sum(), 300, 1.5, 3.0), pulled * 600, None, draws=100, seed=12)
    assert result.raw_bias[neutral] > 0.2
    assert np.all(np.abs(result.corrected_bias) < 0.015), result.corrected_bias
    assert np.all(result.corrected_covered >= 0.88), result.corrected_covered


def test_faces_as_independent_would_undercover_clustered_images() -> None:
    """The reason for clustering: Wilson intervals on faces miss far more often when faces come in groups."""
    rng = np.random.default_rng(5)
    truth = SOCIAL / SOCIAL.sum()
    scenario = Scenario("groups", truth, 200, 4.0, 0.5)  # five faces an image, most alike
    naive, clustered = [], []
    for _ in range(200):
        sums = ClusterSums.from_image_counts(draw_images(rng, scenario))
        raw = raw_shares(sums)
        low, high = wilson(raw.share, np.full(K, sums.counts.sum()))
        naive.append((low <= truth) & (truth <= high))
        clustered.append((raw.low <= truth) & (truth <= raw.high))
    assert np.mean(naive) < 0.8 and np.mean(clustered) > 0.9


def test_the_shipped_card_is_read_by_path() -> None:
    assert COMMITTED_MODEL == DEFAULT_MODEL_PATH
    assert card_path(None) == DEFAULT_MODEL_PATH.with_suffix(".json")
    found = matrices(None)
    assert {"fer2013_publictest", "wild_calibration", "wild_heldout"} <= set(found)
    np.testing.assert_array_equal(found["wild_calibration"], WILD)
    assert confusion(None, "wild_calibration") is confusion(None, "wild_calibration")  # draws made once
    with pytest.raises(CardError):
        confusion(None, "no_such_matrix")


def test_rows_counted_from_few_people_weigh_their_effective_faces() -> None:
    """The card's real-photo rows cluster by person (one person's photos share their errors): the shipped
    calibration fold's 788 happy faces are worth 241 independent ones. Those rows then weigh less against
    the prior, and the corrected intervals widen; FER2013's faces count as independent."""
    shipped = confusion(None, "wild_calibration")
    assert shipped.effective_faces is not None and confusion(None, "fer2013_publictest").effective_faces is None
    totals = WILD.sum(axis=1)
    assert np.all(shipped.row_counts.sum(axis=1) <= totals + 1e-9)
    assert shipped.row_counts.sum(axis=1)[EMOTIONS.index("happy")] < totals[EMOTIONS.index("happy")] / 2
    independent = Confusion("independent", WILD, FER)
    rng = np.random.default_rng(8)
    raw = raw_shares(sums_of(rng, SOCIAL / SOCIAL.sum(), independent.mean, 3000))
    clustered, plain = corrected_shares([raw], shipped)[0], corrected_shares([raw], independent)[0]
    assert clustered is not None and plain is not None
    assert np.mean(clustered.high - clustered.low) > np.mean(plain.high - plain.low)


def test_a_card_in_another_class_order_is_reordered(tmp_path) -> None:
    order = list(reversed(EMOTIONS))
    index = [EMOTIONS.index(name) for name in order]
    sizes = np.arange(1.0, 8.0)
    card = {
        "confusion_matrices": {
            "order": order,
            "mine": WILD[np.ix_(index, index)].tolist(),
            "bad": [[1, 2]],
            "effective_faces": {"mine": sizes[index].tolist(), "bad": [1, 2]},
        }
    }
    model = tmp_path / "other.keras"
    model.with_suffix(".json").write_text(json.dumps(card))
    found = matrices(model)
    assert set(found) == {"mine"}
    np.testing.assert_array_equal(found["mine"], WILD)
    np.testing.assert_array_equal(confusion(model, "mine").effective_faces, sizes)
    with pytest.raises(CardError):
        matrices(tmp_path / "missing.keras")


def stats_block(per_image: np.ndarray) -> dict:
    sums = ClusterSums.from_image_counts(per_image)
    counts = sums.counts.astype(int)
    return {
        "images": sums.images + 3,
        "images_with_faces": sums.images,
        "faces": int(counts.sum()),
        "emotions": {
            name: {"count": int(counts[i]), "share": counts[i] / counts.sum()} for i, name in enumerate(EMOTIONS)
        },
        "cross": sums.cross.astype(int).tolist(),
    }


def test_report_shapes() -> None:
    rng = np.random.default_rng(6)
    instagram = classify(rng, draw_images(rng, Scenario("i", SOCIAL / SOCIAL.sum(), 40, 1.0, 3.0)), np.eye(K))
    twitter = classify(rng, draw_images(rng, Scenario("t", SOCIAL / SOCIAL.sum(), 10, 1.0, 3.0)), np.eye(K))
    result = {**stats_block(np.vstack([instagram, twitter])), "by_platform": {}}
    result["by_platform"] = {"instagram": stats_block(instagram), "twitter": stats_block(twitter)}
    answer = with_intervals(result, Confusion("wild", WILD, FER), min_images=30)
    assert "cross" not in answer and "cross" not in answer["by_platform"]["twitter"]
    assert answer["reliable"] and answer["by_platform"]["instagram"]["reliable"]
    assert not answer["by_platform"]["twitter"]["reliable"]
    happy = answer["emotions"]["happy"]
    assert happy["interval"][0] <= happy["share"] <= happy["interval"][1]
    assert happy["corrected"]["interval"][0] <= happy["corrected"]["share"] <= happy["corrected"]["interval"][1]
    assert answer["statistics"]["corrected"]["matrix"] == "wild"
    plain = with_intervals({**stats_block(instagram), "by_platform": {}}, None, 30, "no card")
    assert plain["emotions"]["happy"]["corrected"] is None and plain["statistics"]["note"] == "no card"
    compared = comparison(stats_block(instagram), stats_block(twitter), Confusion("wild", WILD, FER), 30)
    assert set(compared["differences"]["happy"]) == {"raw", "corrected"}
    assert compared["reliable"] is False
    raw = compared["differences"]["happy"]["raw"]
    assert raw["difference"] == pytest.approx(
        compared["a"]["emotions"]["happy"]["share"] - compared["b"]["emotions"]["happy"]["share"], abs=1e-6
    )
    assert raw["p_holm"] >= raw["p_value"]
