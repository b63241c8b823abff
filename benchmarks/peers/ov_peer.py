"""OpenVINO through optimum-intel: fp32 IR, int8 weight-only, full int8 with nncf (its venv)."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

from systems import Peer, ensure


def _copy_missing(src: Path, dst: Path) -> None:
    """config.json and friends that a quantizer's save does not write."""
    for f in src.iterdir():
        if f.is_file() and not (dst / f.name).exists() and f.name != ".complete":
            shutil.copy(f, dst / f.name)


class OpenVINO(Peer):
    """``OVModelForMaskedLM`` / ``OVModelForFeatureExtraction`` exported from the checkpoint.

    ``openvino-fp32`` compiles with ``INFERENCE_PRECISION_HINT=f32``; ``openvino-default`` runs the
    same IR with OpenVINO's default, which is bf16 on CPUs with AVX-512 BF16 or AMX (recorded per
    run). The int8 systems keep the default for their non-int8 ops, as a user would."""

    def _cls(self, task: str):
        import optimum.intel as intel

        return getattr(intel, {"mlm": "OVModelForMaskedLM", "encoder": "OVModelForFeatureExtraction",
                               "cls": "OVModelForSequenceClassification"}[task])

    def _fp32(self, task: str) -> Path:
        return ensure(self.work / "openvino" / f"fp32-{task}", lambda tmp: self._cls(task).from_pretrained(
            self.ckpt, export=True, load_in_8bit=False, compile=False).save_pretrained(tmp))

    def _weights8(self, task: str) -> Path:
        from optimum.intel import OVWeightQuantizationConfig

        return ensure(self.work / "openvino" / f"int8-weights-{task}", lambda tmp: self._cls(task).from_pretrained(
            self.ckpt, export=True, quantization_config=OVWeightQuantizationConfig(bits=8),
            compile=False).save_pretrained(tmp))

    def _nncf(self, task: str) -> Path:
        src = self._fp32(task)

        def build(tmp: Path) -> None:
            import nncf
            from optimum.intel import OVConfig, OVQuantizationConfig, OVQuantizer

            model = self._cls(task).from_pretrained(src, compile=False)
            names = set(model.input_names)
            tok = self.tokenizer()
            samples = [{k: v for k, v in tok(t, return_tensors="np").items() if k in names}
                       for t in self.spec["calibration_texts"]]
            config = OVQuantizationConfig(num_samples=len(samples))  # asymmetric activations, transformer preset
            OVQuantizer.from_pretrained(model).quantize(calibration_dataset=nncf.Dataset(samples),
                                                        ov_config=OVConfig(quantization_config=config),
                                                        save_directory=tmp)
            _copy_missing(src, tmp)
            (tmp / "how.txt").write_text(f"OVQuantizer full int8 (OVQuantizationConfig defaults), nncf calibration "
                                         f"on {len(samples)} texts of 8-125 tokens")
        return ensure(self.work / "openvino" / f"int8-nncf-{task}", build)

    def _dir(self, task: str) -> Path:
        if self.name in ("openvino-fp32", "openvino-default"):
            return self._fp32(task)
        return self._weights8(task) if self.name == "openvino-int8-weights" else self._nncf(task)

    def prepare(self) -> None:
        for task in self.spec.get("tasks", ("mlm", "encoder")):
            self._dir(task)

    def _model(self, task: str):
        config = {"INFERENCE_NUM_THREADS": str(self.spec["threads"]), "NUM_STREAMS": "1",
                  "PERFORMANCE_HINT": "LATENCY"}
        if self.name == "openvino-fp32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        d = self._dir(task)
        if (d / "how.txt").is_file():
            self.notes.append(f"{task}: {(d / 'how.txt').read_text()}")
        model = self._cls(task).from_pretrained(d, ov_config=config)  # compiled: model.request
        precision = model.request.get_property("INFERENCE_PRECISION_HINT")
        self.notes.append(f"{task}: compiled with INFERENCE_PRECISION_HINT="
                          f"{getattr(precision, 'get_type_name', lambda: precision)()}, "
                          f"INFERENCE_NUM_THREADS {model.request.get_property('INFERENCE_NUM_THREADS')}")
        return model, d

    def load_mlm(self) -> None:
        from optimum.intel import pipeline

        self.model, self.model_dir = self._model("mlm")
        self.pipe = pipeline("fill-mask", model=self.model, tokenizer=self.tokenizer(), accelerator="openvino")

    def load_cls(self) -> None:
        from optimum.intel import pipeline

        self.model, self.model_dir = self._model("cls")
        self.pipe = pipeline("text-classification", model=self.model, tokenizer=self.tokenizer(),
                             accelerator="openvino")

    def forward(self, ids, mask_id: int):
        compiled = self.model.request  # an ov.CompiledModel: calling it runs one inference
        feed = self.feed(ids, set(self.model.input_names))
        return lambda: compiled(feed)

    def load_encoder(self) -> None:
        self.model = self.pipe = None
        gc.collect()
        self.enc, _ = self._model("encoder")

    def encoder(self, ids):
        feed = self.feed(ids, set(self.enc.input_names))
        compiled = self.enc.request
        return lambda: compiled(feed)

    def unload(self) -> None:
        self.model = None
        super().unload()
