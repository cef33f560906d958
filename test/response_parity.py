#!/usr/bin/python3
"""Agreement of arm_comparison / minimum_detectable_effect with SciPy.

Run by scripts/test.sh against the test cluster (PGHOST/PGPORT/PGUSER), as
test/sklearn_parity.py.  Creates database response_parity and, in a
throwaway table, random data of many shapes (normal and skewed revenue,
many zeros, tiny arms, equal variances, a constant arm, huge values, a
baseline strongly or not at all correlated with the outcome, unequal arms),
with a fixed seed.  For each shape it checks every field of
arm_comparison(y, x, in_treatment) against numpy and Debian's python3-scipy
(1.10):

  * n, mean, sample sd per arm, lift, lift_pct;
  * se, df, CI and p-value against scipy.stats.ttest_ind(equal_var=False)
    (se and df as Welch's formulas in numpy, the CI as lift -/+ t.ppf(0.975,
    df) * se);
  * CUPED: theta = cov(X, Y) / var(X) over both arms, Y' = Y - theta (X -
    mean X) computed explicitly in numpy, then ttest_ind on Y';
  * balance_p_value: ttest_ind of X between the arms;
  * minimum_detectable_effect against norm.ppf.

Equal means within 1e-9 relative, or 1e-9 of the value's scale near 0 (a
CI bound's scale is t * se, a lift's the arms' sd).  SciPy 1.10's t.ppf is
itself off by up to about 3e-9 relative at a few degrees of freedom (its
quantile does not solve its own t.sf to double precision), so the reference
quantile is polished by two Newton steps on t.sf, which is exact to about
1e-15 there.  A NULL must be NULL in both (NaN in SciPy).

Prints one "ok - ..." / "not ok - ..." line per shape and field group and
"N passed, M failed"; exits 1 on any failure.  Drops its database.
"""
import math
import sys
import warnings

import numpy as np
import psycopg2
from scipy import stats

DB = "response_parity"
RTOL = 1e-9
passed = failed = 0

FIELDS = ["n_treatment", "n_holdout", "mean_treatment", "mean_holdout", "sd_treatment",
          "sd_holdout", "lift", "lift_pct", "se", "df", "ci_low", "ci_high", "p_value",
          "cuped_theta", "cuped_lift", "cuped_se", "cuped_ci_low", "cuped_ci_high",
          "cuped_p_value", "balance_p_value"]


def check(ok, what):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(("ok - " if ok else "not ok - ") + what, flush=True)


def t_quantile(p, df):
    """t.ppf polished by Newton steps on t.sf (SciPy's ppf is less exact than its sf)."""
    q = stats.t.ppf(p, df)
    for _ in range(2):
        q += (stats.t.sf(q, df) - (1 - p)) / stats.t.pdf(q, df)
    return q


def welch(a, b):
    """se, df, CI, p of Welch's test of mean(a) - mean(b); None where undefined."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return dict(se=None, df=None, ci_low=None, ci_high=None, p_value=None, scale=0)
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    se = math.sqrt(va + vb)
    lift = a.mean() - b.mean()
    if se == 0:
        return dict(se=0.0, df=None, ci_low=None, ci_high=None, p_value=None, scale=0)
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    q = t_quantile(0.975, df)
    return dict(se=se, df=df, ci_low=lift - q * se, ci_high=lift + q * se, p_value=p,
                scale=q * se)


def reference(y, x, arm):
    t, h = arm, ~arm
    r = dict(n_treatment=int(t.sum()), n_holdout=int(h.sum()))
    r["mean_treatment"] = y[t].mean() if t.any() else None
    r["mean_holdout"] = y[h].mean() if h.any() else None
    r["sd_treatment"] = y[t].std(ddof=1) if t.sum() >= 2 else None
    r["sd_holdout"] = y[h].std(ddof=1) if h.sum() >= 2 else None
    both = t.any() and h.any()
    r["lift"] = y[t].mean() - y[h].mean() if both else None
    r["lift_pct"] = 100 * r["lift"] / r["mean_holdout"] if both and r["mean_holdout"] != 0 else None
    w = welch(y[t], y[h])
    r.update({k: w[k] for k in ("se", "df", "ci_low", "ci_high", "p_value")})
    vx = x.var(ddof=1) if len(x) >= 2 else 0.0
    theta = np.cov(x, y, ddof=1)[0, 1] / vx if vx > 0 else 0.0
    r["cuped_theta"] = theta
    yp = y - theta * (x - x.mean())
    r["cuped_lift"] = yp[t].mean() - yp[h].mean() if both else None
    cw = welch(yp[t], yp[h])
    for k in ("se", "ci_low", "ci_high", "p_value"):
        r["cuped_" + k] = cw[k]
    r["balance_p_value"] = welch(x[t], x[h])["p_value"]
    scales = dict(ci_low=w["scale"], ci_high=w["scale"], cuped_ci_low=cw["scale"],
                  cuped_ci_high=cw["scale"])
    sd = max(y[t].std() if t.any() else 0, y[h].std() if h.any() else 0)
    for k in ("lift", "cuped_lift", "mean_treatment", "mean_holdout"):
        scales[k] = sd
    return r, scales


def close(got, want, scale=0.0):
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None
    if got is None:
        return False
    return abs(got - want) <= RTOL * max(abs(want), scale) or abs(got - want) <= 1e-300


def shapes(rng):
    """(name, y, x, in_treatment) for each shape of data."""
    def arms(n, share=0.5):
        a = np.zeros(n, bool)
        a[rng.permutation(n)[: int(round(n * share))]] = True
        return a

    n = 2000
    x = rng.normal(1000, 200, n)
    a = arms(n)
    yield "normal, correlated baseline", x * 1.1 + rng.normal(0, 100, n) + 30 * a, x, a
    x = rng.lognormal(6, 1.5, n)
    a = arms(n, 0.9)
    yield "skewed revenue, 10 % holdout", x * rng.lognormal(0, 0.5, n) * (1 + 0.05 * a), x, a
    x = np.where(rng.random(n) < 0.6, 0.0, rng.lognormal(7, 1, n))
    y = np.where(rng.random(n) < 0.6, 0.0, rng.lognormal(7, 1, n))
    a = arms(n)
    yield "mostly zeros (members without orders)", y, x, a
    x = rng.normal(10, 1, 5)
    yield "tiny arms (3 and 2)", rng.normal(10, 1, 5), x, np.array([1, 1, 1, 0, 0], bool)
    yield "arms of 2 and 2", np.array([1.0, 4.0, 2.0, 2.5]), np.array([0.0, 1.0, 0.5, 0.7]), \
        np.array([1, 1, 0, 0], bool)
    x = rng.normal(50, 5, 400)
    a = arms(400)
    yield "equal variances, no effect", rng.normal(50, 5, 400), x, a
    x = rng.normal(1e12, 1e11, 300)
    a = arms(300)
    yield "huge values", x + rng.normal(0, 1e10, 300) + 1e9 * a, x, a
    y = rng.normal(3, 1, 50)
    a = np.zeros(50, bool)
    a[:10] = True
    y[~a] = 7.0
    yield "constant holdout", y, rng.normal(3, 1, 50), a
    x = np.full(200, 5.0)
    a = arms(200)
    yield "constant baseline (theta 0)", rng.poisson(4, 200).astype(float), x, a
    y = rng.integers(0, 12, 1000).astype(float)
    a = arms(1000, 0.2)
    yield "order counts, 80 % holdout", y, np.maximum(0, y + rng.integers(-3, 4, 1000)), a
    y = rng.normal(0, 1, 100)
    a = arms(100)
    y[a] += 4
    yield "large effect (p near 1e-40)", y, rng.normal(0, 1, 100), a
    a = np.zeros(30, bool)
    a[0] = True
    yield "a treatment arm of one", rng.normal(0, 1, 30), rng.normal(0, 1, 30), a
    a = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    yield "both arms constant (se 0, lift 2)", np.where(a, 5.0, 3.0), rng.normal(0, 1, 7), a
    yield "both arms constant and equal (se 0, lift 0)", np.full(7, 4.0), rng.normal(0, 1, 7), a
    yield "no holdout", rng.normal(0, 1, 20), rng.normal(0, 1, 20), np.ones(20, bool)
    a = arms(40)
    yield "holdout mean 0 (lift_pct NULL)", np.where(a, rng.normal(1, 1, 40), 0.0), rng.normal(0, 1, 40), a


def main():
    # SciPy warns of the constant arms' zero variance: the shapes want them
    warnings.simplefilter("ignore", RuntimeWarning)
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    admin.cursor().execute(f"CREATE DATABASE {DB}")
    try:
        conn = psycopg2.connect(dbname=DB)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION customer_analytics")
        cur.execute("CREATE TABLE arm_data (shape int, y float8, x float8, in_treatment boolean)")
        rng = np.random.default_rng(20260423)
        all_shapes = list(shapes(rng))
        for i, (_, y, x, a) in enumerate(all_shapes):
            cur.execute("INSERT INTO arm_data SELECT %s, * FROM unnest(%s::float8[], %s::float8[], %s::boolean[])",
                        (i, [float(v) for v in y], [float(v) for v in x], [bool(v) for v in a]))
        cur.execute("SELECT shape, to_jsonb(r) FROM (SELECT shape, (customer_analytics.arm_comparison(y, x, in_treatment)).*"
                    "  FROM arm_data GROUP BY shape) r ORDER BY shape")
        got = dict(cur.fetchall())
        for i, (name, y, x, a) in enumerate(all_shapes):
            want, scales = reference(np.asarray(y, float), np.asarray(x, float), np.asarray(a, bool))
            bad = [f"{f}: {got[i][f]!r} against {want[f]!r}" for f in FIELDS
                   if not close(got[i][f], want[f], scales.get(f, 0.0))]
            check(not bad, f"arm_comparison, {name}: every field as SciPy" + ("" if not bad else " (" + "; ".join(bad) + ")"))

        # minimum_detectable_effect against norm.ppf
        bad = []
        for sd, nt, nh, alpha, power in [(100, 900, 100, 0.05, 0.8), (1.5, 10, 10, 0.01, 0.9),
                                         (2500, 5000, 500, 0.1, 0.5), (1, 1, 1, 1e-10, 0.999999),
                                         (0, 50, 50, 0.05, 0.8), (3.3, 123456, 7, 0.5, 0.2)]:
            cur.execute("SELECT customer_analytics.minimum_detectable_effect(%s, %s, %s, %s, %s)",
                        (sd, nt, nh, alpha, power))
            mde = cur.fetchone()[0]
            # z_{1-alpha/2} as -norm.ppf(alpha/2): 1 - alpha/2 would round a tiny alpha away
            want = (-stats.norm.ppf(alpha / 2) + stats.norm.ppf(power)) * sd * math.sqrt(1 / nt + 1 / nh)
            if not close(mde, want):
                bad.append(f"{(sd, nt, nh, alpha, power)}: {mde!r} against {want!r}")
        check(not bad, "minimum_detectable_effect as norm.ppf" + ("" if not bad else " (" + "; ".join(bad) + ")"))
        bad = []
        for p in [1e-300, 1e-20, 1e-6, 0.001, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999999]:
            # the quantile alone: with sd 1, arms of 1 and alpha 0.5, mde / sqrt(2) = z_0.75 + z_p
            cur.execute("SELECT customer_analytics.minimum_detectable_effect(1, 1, 1, 0.5, %s) / sqrt(2)", (p,))
            got_z = cur.fetchone()[0] - stats.norm.ppf(0.75)
            want = stats.norm.ppf(p)
            if abs(got_z - want) > 1e-12 * max(1, abs(want)):
                bad.append(f"z({p}): {got_z!r} against {want!r}")
        check(not bad, "the normal quantile as norm.ppf to 1e-12" + ("" if not bad else " (" + "; ".join(bad) + ")"))
        conn.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
