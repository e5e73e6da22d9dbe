"""RASP programs with total semantics, their interpreter, and a compiler to transformers that
compute them exactly (after Weiss et al. 2021, "Thinking Like Transformers", and Lindner et al.
2023, "Tracr: Compiled Transformers as a Laboratory for Interpretability").

>>> from planted.toys import rasp
>>> program = rasp.make_reverse(rasp.tokens)
>>> rasp.evaluate(program, ["a", "b", "c"])
['c', 'b', 'a']
>>> compiled = rasp.compile_program(program, vocab=["a", "b", "c"], max_seq_len=5)
>>> rasp.evaluate_model(compiled, [["a", "b", "c"]])
[['c', 'b', 'a']]
>>> rasp.differential(compiled).ok  # every input up to length 5, every position, every block
True

Null (``None``) is a value: ``Map`` and ``Select`` propagate it unless declared ``null_safe``; a
categorical ``Aggregate`` is the value its selected keys share (null if none or they disagree); a
numerical one is their mean. A program the compiler cannot make exact is refused with a
``ValueError`` naming the operation. ``PROGRAMS`` lists the standard programs;
``random_program(seed)`` draws random well-typed ones. ``to_hooked_transformer`` exports a
compiled model to TransformerLens (the ``transformer-lens`` extra); ``transformer_lens_weights``
gives its config and state dict without it.
"""

from planted.toys._rasp._check import Differential, all_inputs, differential
from planted.toys._rasp._compiler import Compiled, Component, compile_program
from planted.toys._rasp._language import (
    Aggregate,
    Comparison,
    Map,
    RASPExpr,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    categorical,
    evaluate,
    indices,
    numerical,
    tokens,
    trace,
)
from planted.toys._rasp._model import CompiledTransformer, apply, decode, encode, evaluate_model, run
from planted.toys._rasp._programs import (
    PROGRAMS,
    RASP_PROGRAMS,
    ProgramSpec,
    detect_pattern,
    make_count,
    make_count_less_freq,
    make_frac_prevs,
    make_hist,
    make_induction,
    make_ioi,
    make_length,
    make_pair_balance,
    make_reverse,
    make_shuffle_dyck,
    make_sort,
    make_sort_freq,
    make_sort_unique,
    make_successor,
    make_tracr_issue_25,
    shift_by,
)
from planted.toys._rasp._export import to_hooked_transformer, transformer_lens_weights
from planted.toys._rasp._random import RandomProgram, random_program

__all__ = [
    "Aggregate", "Comparison", "Compiled", "CompiledTransformer", "Component", "Differential", "Map", "PROGRAMS",
    "ProgramSpec", "RASP_PROGRAMS", "RASPExpr", "RandomProgram", "SOp", "Select", "SelectorWidth", "SequenceMap", "all_inputs", "apply",
    "categorical", "compile_program", "decode", "detect_pattern", "differential", "encode", "evaluate",
    "evaluate_model", "indices", "make_count", "make_count_less_freq", "make_frac_prevs", "make_hist",
    "make_induction", "make_ioi", "make_length", "make_pair_balance", "make_reverse", "make_shuffle_dyck", "make_sort",
    "make_sort_freq", "make_sort_unique", "make_successor", "make_tracr_issue_25", "numerical", "random_program",
    "run", "shift_by", "to_hooked_transformer", "tokens", "trace", "transformer_lens_weights",
]
