"""scikit-learn's own checks of the estimator API (``parametrize_with_checks``) on
``ImprintingClassifier``: the paper's best method, a coupled GEN under an m-NN vote, a
baseline."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from imprint.method.classifier import ImprintingClassifier

# Two classes score like more: one column per class (the first maximum is the class predicted),
# which the exported head, the novelty score and the kept models read the same way for any
# number of classes; scikit-learn's binary convention is a single column.
ONE_COLUMN = (
    "decision_function gives two columns for two classes, one per class as for more classes "
    "(scikit-learn's binary convention: one column)"
)
EXPECTED_FAILURES = {
    "check_classifiers_train": ONE_COLUMN,
    "check_classifiers_classes": ONE_COLUMN,
}

ESTIMATORS = [
    ImprintingClassifier(),
    ImprintingClassifier(gen="ls", norm_post="quantile", agg="mnn", distance="euclidean", m=3),
    ImprintingClassifier(gen="knn", k=3),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda _: EXPECTED_FAILURES)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
