"""The released demos' feature computation in plain PyTorch, as a process of its own.

    python benchmarks/torch_demo.py CKPT_DIR PATHS_JSON OUT_NPZ

CKPT_DIR holds quality.pth and content.pth ({'model': DDP state_dict}, the
released layout); PATHS_JSON is a JSON list of image paths. For each image,
as the demos do: PIL open + convert('RGB'), half scale by resize((w//2,
h//2)), torchvision's ToTensor (restated: contiguous CHW float / 255),
ImageNet Normalize for the content encoder, the encoder in eval mode,
concat(full, half); image by image. Writes {quality, content} (N, 4096) to
OUT_NPZ and prints one JSON line: extract (s, after the models are loaded),
process (s, from start) and max_rss_bytes (peak resident memory).
Used by benchmarks/extract_mixed.py and benchmarks/extract_memory.py.
"""
import json
import resource
import sys
import time

start = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from reiqa_jax.reference.torch_model import ReIQANet  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def main(ckpt_dir: str, paths_json: str, out: str) -> None:
    models = {}
    for name in ("quality", "content"):
        model = ReIQANet()
        state = torch.load(f"{ckpt_dir}/{name}.pth", weights_only=True)["model"]
        model.load_state_dict({k[len("module."):]: v for k, v in state.items()})
        models[name] = model.eval()
    paths = json.loads(paths_json)
    loop = time.perf_counter()
    features = {name: [] for name in models}
    with torch.inference_mode():
        for path in paths:
            image = Image.open(path).convert("RGB")
            half = image.resize((image.size[0] // 2, image.size[1] // 2))
            for name, model in models.items():
                row = []
                for img in (image, half):
                    x = torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous().float()
                    x = x.div(255)
                    if name == "content":
                        x = (x - MEAN) / STD
                    row.append(model.encoder(x[None]))
                features[name].append(torch.cat(row, 1)[0].numpy())
    end = time.perf_counter()
    np.savez(out, **{name: np.stack(rows) for name, rows in features.items()})
    print(json.dumps({"extract": end - loop, "process": end - start,
                      "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
