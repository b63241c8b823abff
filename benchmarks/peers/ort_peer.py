"""optimum-onnx on onnxruntime: export, optional optimizer, ``ORTQuantizer`` dynamic int8 (its venv)."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

from systems import Peer, ensure

#: xlm-onnx class (``xlm_onnx.cpu``) -> optimum's ``AutoQuantizationConfig`` constructor.
ORT_ISA = {"amx": "avx512_vnni", "avx512-vnni": "avx512_vnni", "avx-vnni": "avx2", "avx512": "avx512",
           "avx2": "avx2", "arm64": "arm64"}


#: Task key (``spec["tasks"]``) -> optimum's model class.
TASK_CLASS = {"mlm": "ORTModelForMaskedLM", "encoder": "ORTModelForFeatureExtraction",
              "cls": "ORTModelForSequenceClassification"}


def _onnx_file(d: Path) -> str:
    """The one ``.onnx`` file of an optimum directory (``model``, ``model_optimized``, ``model_quantized``)."""
    (name,) = (f.name for f in d.glob("*.onnx"))
    return name


class OptimumORT(Peer):
    """optimum-onnx: ``ORTModelFor*`` export, optionally ORT's transformer optimizer, then
    ``ORTQuantizer`` dynamic int8 with ``AutoQuantizationConfig`` for this CPU's class."""

    def _export(self, task: str) -> Path:
        import optimum.onnxruntime as ort

        cls = getattr(ort, TASK_CLASS[task])
        return ensure(self.work / "optimum-ort" / f"fp32-{task}",
                      lambda tmp: cls.from_pretrained(self.ckpt, export=True).save_pretrained(tmp))

    def _optimized(self, task: str) -> Path:
        """optimum's ``ORTOptimizer`` if it takes XLM; else ORT's optimizer as model type ``bert``."""
        src = self._export(task)

        def build(tmp: Path) -> None:
            from optimum.onnxruntime import ORTOptimizer
            from optimum.onnxruntime.configuration import OptimizationConfig

            try:
                ORTOptimizer.from_pretrained(src).optimize(OptimizationConfig(optimization_level=2), tmp)
                (tmp / "how.txt").write_text("optimum ORTOptimizer, optimization_level=2")
                return
            except Exception as exc:  # noqa: BLE001 - the refusal is the result to report
                why = f"optimum ORTOptimizer refused: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            from onnxruntime.transformers.optimizer import optimize_model

            from onnxruntime.quantization.shape_inference import quant_pre_process

            opt = optimize_model(str(src / "model.onnx"), model_type="bert", num_heads=self.spec["heads"],
                                 hidden_size=self.spec["dim"], opt_level=1)
            fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
            opt.save_model_to_file(str(tmp / "fused.onnx"), use_external_data_format=True)
            del opt
            # The fusions' contrib ops leave tensor types that onnx's shape inference cannot
            # infer, and the quantizer then refuses the MatMuls after them; ORT's own
            # pre-processing (symbolic shape inference) fills them in.
            quant_pre_process(str(tmp / "fused.onnx"), str(tmp / "model.onnx"), skip_optimization=True,
                              auto_merge=True, save_as_external_data=True, all_tensors_to_one_file=True,
                              external_data_location="model.onnx.data")
            for f in tmp.glob("fused.onnx*"):
                f.unlink()
            for f in src.iterdir():
                if not f.name.startswith("model.onnx") and f.is_file():
                    shutil.copy(f, tmp / f.name)
            (tmp / "how.txt").write_text(f"{why}; onnxruntime.transformers optimize_model(model_type='bert'), "
                                         f"fused: {fused}")
        return ensure(self.work / "optimum-ort" / f"fp32-opt-{task}", build)

    def _quantized(self, task: str, optimized: bool) -> Path:
        src = self._optimized(task) if optimized else self._export(task)
        isa = ORT_ISA.get(self.spec["isa_class"], "avx2")

        def build(tmp: Path) -> None:
            from optimum.onnxruntime import ORTQuantizer
            from optimum.onnxruntime.configuration import AutoQuantizationConfig

            qconfig = getattr(AutoQuantizationConfig, isa)(is_static=False, per_channel=False)
            ORTQuantizer.from_pretrained(src, file_name=_onnx_file(src)).quantize(
                save_dir=tmp, quantization_config=qconfig, use_external_data_format=True)
            (tmp / "how.txt").write_text(f"ORTQuantizer dynamic, AutoQuantizationConfig.{isa}(is_static=False, "
                                         f"per_channel=False) on {src.name}")
        return ensure(self.work / "optimum-ort" / f"int8{'-opt' if optimized else ''}-{isa}-{task}", build)

    def _dir(self, task: str) -> Path:
        if self.name == "optimum-ort-fp32":
            return self._export(task)
        return self._quantized(task, optimized=self.name.endswith("-opt"))

    def prepare(self) -> None:
        for task in self.spec.get("tasks", ("mlm", "encoder")):
            self._dir(task)

    def _model(self, cls, task: str):
        import onnxruntime as ort

        d = self._dir(task)
        if (d / "how.txt").is_file():
            self.notes.append(f"{task}: {(d / 'how.txt').read_text()}")
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.spec["threads"], 1
        return cls.from_pretrained(d, file_name=_onnx_file(d), session_options=options, provider="CPUExecutionProvider")

    def load_mlm(self) -> None:
        from optimum.onnxruntime import ORTModelForMaskedLM, pipeline

        self.model = self._model(ORTModelForMaskedLM, "mlm")
        self.pipe = pipeline("fill-mask", model=self.model, tokenizer=self.tokenizer())
        self.model_dir = self._dir("mlm")

    def load_cls(self) -> None:
        from optimum.onnxruntime import ORTModelForSequenceClassification, pipeline

        self.model = self._model(ORTModelForSequenceClassification, "cls")
        self.pipe = pipeline("text-classification", model=self.model, tokenizer=self.tokenizer())
        self.model_dir = self._dir("cls")

    def forward(self, ids, mask_id: int):
        session = self.model.model
        feed = self.feed(ids, {i.name for i in session.get_inputs()})
        return lambda: session.run(None, feed)

    def load_encoder(self) -> None:
        from optimum.onnxruntime import ORTModelForFeatureExtraction

        self.model = None
        gc.collect()
        self.enc = self._model(ORTModelForFeatureExtraction, "encoder").model

    def encoder(self, ids):
        feed = self.feed(ids, {i.name for i in self.enc.get_inputs()})
        return lambda: self.enc.run(None, feed)

    def unload(self) -> None:
        self.model = None
        super().unload()
