"""Early stopping on what the model is for: Recall@10 of the validation users, after every epoch.

The in-batch softmax loss on validation is a poor guide on small data: it is
lowest after the first epoch (the movie biases start at popularity) and rises
while Recall@10 still climbs, so training stopped before the towers had learnt
anyone's taste (a 300-user set ended below the most-popular baseline).
"""

from __future__ import annotations

import keras

from dlapps_plugins.recommendation.ranking_metrics import K, MONITOR, evaluate_rankings


class ValidationRanking(keras.callbacks.Callback):
    """Adds ``val_recall_at_10`` (the whole catalogue ranked for up to ``max_users`` validation users) to
    each epoch's logs; list it before the callbacks that read it."""

    def __init__(self, task, split, max_users: int = 2000):
        super().__init__()
        self.task, self.split, self.max_users = task, split, max_users

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.split is None or not len(self.split):
            return
        self.task.forget_item_vectors()  # the item tower has changed since the last epoch
        try:
            metrics = evaluate_rankings(self.task, self.model, self.split, max_users=self.max_users,
                                        rankers=("model",))
        finally:
            self.task.forget_item_vectors()  # nor may evaluation after training see this epoch's vectors
        logs[MONITOR] = metrics[f"recall_at_{K}"]
