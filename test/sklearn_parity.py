#!/usr/bin/python3
"""Agreement of kmeans_fit / kmeans_predict / silhouette with scikit-learn.

Run by scripts/test.sh against the test cluster (PGHOST/PGPORT/PGUSER).
Creates database sklearn_parity, loads the demo data (scale 0.3, through
psql), takes the repeat customers' feature vectors from
customer_analytics.customer_features() and checks, with Debian's
python3-sklearn (1.2):

  * standardization: kmeans_fit's mean/scale equal StandardScaler's;
  * from the same initial centroids: the same labels and the same inertia
    (relative 1e-9) as KMeans(init=centroids, n_init=1, algorithm='lloyd');
  * with k-means++ and n_init 10: an inertia no worse than scikit-learn's
    (random_state 0) by more than 0.5 %;
  * silhouette() equals silhouette_score on the same labels to 1e-9.

Prints the figures, one "ok - ..." / "not ok - ..." line per check and
"N passed, M failed"; exits 1 on any failure.  Drops its database.
"""
import json
import os
import subprocess
import sys

import numpy as np
import psycopg2
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DB = "sklearn_parity"
K = 4
passed = failed = 0


def check(ok, what):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(("ok - " if ok else "not ok - ") + what, flush=True)


def main():
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    admin.cursor().execute(f"CREATE DATABASE {DB}")
    try:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "scale=0.3", "-d", DB,
                        "-f", os.path.join(ROOT, "test", "demo_data.sql")],
                       check=True, stdout=subprocess.DEVNULL)
        conn = psycopg2.connect(dbname=DB)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION customer_analytics")
        cur.execute("CREATE TEMP TABLE f AS SELECT customer_code, features"
                    "  FROM customer_analytics.customer_features() WHERE is_repeat")
        cur.execute("SELECT customer_code, features FROM f ORDER BY customer_code")
        rows = cur.fetchall()
        codes = [r[0] for r in rows]
        X = np.array([r[1] for r in rows], dtype=np.float64)
        print(f"# {X.shape[0]} repeat customers, {X.shape[1]} features, k = {K}")

        scaler = StandardScaler().fit(X)
        Z = scaler.transform(X)

        # 1. the same initial centroids: four customers spread over the list
        init = Z[[0, len(Z) // 4, len(Z) // 2, 3 * len(Z) // 4]]
        opts = json.dumps({"init": init.tolist()})
        cur.execute("SELECT customer_analytics.kmeans_fit(features, %s, %s::jsonb) FROM f", (K, opts))
        model = cur.fetchone()[0]
        rel = np.max(np.abs(np.array(model["mean"]) - scaler.mean_) / np.maximum(np.abs(scaler.mean_), 1e-300))
        rels = np.max(np.abs(np.array(model["scale"]) - scaler.scale_) / scaler.scale_)
        print(f"# standardization: max relative difference mean {rel:.2e}, scale {rels:.2e}")
        check(rel < 1e-12 and rels < 1e-12, "mean and scale equal StandardScaler's")

        km = KMeans(n_clusters=K, init=init, n_init=1, algorithm="lloyd", max_iter=300, tol=1e-4).fit(Z)
        cur.execute("SELECT customer_code, customer_analytics.kmeans_predict(%s::jsonb, features)"
                    "  FROM f ORDER BY customer_code", (json.dumps(model),))
        ours = np.array([r[1] for r in cur.fetchall()])
        same = int(np.sum(ours == km.labels_))
        rel_inertia = abs(model["inertia"] - km.inertia_) / km.inertia_
        print(f"# from given centroids: inertia ours {model['inertia']:.12g}, scikit-learn {km.inertia_:.12g}"
              f" (relative {rel_inertia:.2e}); iterations {model['iterations']} vs {km.n_iter_};"
              f" labels equal {same}/{len(ours)}")
        check(same == len(ours), "same labels as KMeans(init=centroids, n_init=1, algorithm='lloyd')")
        check(rel_inertia < 1e-9, "same inertia to 1e-9 (relative)")

        # 2. k-means++ with 10 restarts
        cur.execute("SELECT customer_analytics.kmeans_fit(features, %s, '{\"n_init\": 10, \"seed\": 0}') FROM f", (K,))
        pp = cur.fetchone()[0]
        skpp = KMeans(n_clusters=K, n_init=10, algorithm="lloyd", random_state=0).fit(Z)
        ratio = pp["inertia"] / skpp.inertia_
        print(f"# k-means++ n_init 10: inertia ours {pp['inertia']:.12g}, scikit-learn {skpp.inertia_:.12g}"
              f" (ours / theirs = {ratio:.6f})")
        check(ratio <= 1.005, "k-means++ inertia within 0.5 % of scikit-learn's")

        # 3. silhouette on the same labels
        cur.execute("SELECT customer_analytics.silhouette(customer_analytics.kmeans_standardize(%s::jsonb, features),"
                    "                                     customer_analytics.kmeans_predict(%s::jsonb, features)) FROM f",
                    (json.dumps(model), json.dumps(model)))
        sil = cur.fetchone()[0]
        sk_sil = silhouette_score(Z, ours)
        print(f"# silhouette: ours {sil:.15f}, silhouette_score {sk_sil:.15f} (difference {abs(sil - sk_sil):.2e})")
        check(abs(sil - sk_sil) < 1e-9, "silhouette equals silhouette_score to 1e-9")
        conn.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
        admin.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash is a failure, with its reason
        check(False, f"sklearn_parity crashed: {e!r}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
