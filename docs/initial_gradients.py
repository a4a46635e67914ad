"""The losses' gradients at the start of training: why plain GRAM starts slowly (docs/results.md).

    python docs/initial_gradients.py    # needs the world's train split and its cache (make results)

For the study's untrained models (seeds 0, 1, 2) and their first 64 training clips: the norm of
each loss's gradient with respect to the embeddings, the median volume and the mean cosines.
"""

from __future__ import annotations

import torch

from gramviz.cache import open_cache
from gramviz.datasets import ClipDataset
from gramviz.models import clip_settings
from gramviz.gram import volume_matrix
from gramviz.losses import FusedInfoNCELoss, GRAMLoss, PairwiseInfoNCELoss
from gramviz.training.config import load_config
from gramviz.training.stages import initial_model

LOSSES = {"gram": GRAMLoss, "pairwise": PairwiseInfoNCELoss, "fused": FusedInfoNCELoss}


def main() -> None:
    for seed in (0, 1, 2):
        cfg = load_config("configs/study-base.toml", overrides=[f"seed={seed}"])
        model = initial_model(cfg).eval()
        data = open_cache(ClipDataset(f"{cfg.train_data}/captions.jsonl", clip_settings(model)),
                          f"{cfg.cache_dir}/train", progress=False)
        batch = data.collate([data[i] for i in range(cfg.batch_size)])
        with torch.no_grad():
            emb = model.encode({"text": [c[0] for c in batch["captions"]], "video": batch["video"],
                                "audio": batch["audio"]})
        row = {"seed": seed}
        for name, loss_type in LOSSES.items():
            leaf = {m: x.clone().requires_grad_() for m, x in emb.items()}
            loss_type(temperature=cfg.temperature)(leaf["text"], leaf["video"], leaf["audio"]).backward()
            row[f"grad/{name}"] = round(float(torch.sqrt(sum((x.grad ** 2).sum() for x in leaf.values()))), 4)
        row["volume/median"] = round(float(volume_matrix(emb["text"], emb["video"], emb["audio"]).median()), 3)
        for a, b in (("text", "video"), ("video", "audio")):
            row[f"cos/{a[0]}{b[0]}"] = round(float((emb[a] * emb[b]).sum(1).mean()), 3)
        print(row)


if __name__ == "__main__":
    main()
