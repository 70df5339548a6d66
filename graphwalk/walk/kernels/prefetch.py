"""A software prefetch for the kernels: ``prefetch(arr, i)`` asks the CPU to bring ``arr[i]``'s
cache line in (LLVM's ``llvm.prefetch``: read, keep, data). It changes no result; it lets a search
that knows which rows it reads next overlap their cache misses."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch"]


@intrinsic
def prefetch(typingctx, arr, idx):  # type: ignore[no-untyped-def]
    """Ask the CPU to bring ``arr[idx]``'s cache line in (LLVM's prefetch: read, keep, data); no
    effect on results. ``idx`` must be in bounds (not checked)."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = builder.gep(ary.data, [context.cast(builder, args[1], idxty, types.intp)])
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        # the typed-pointer name: LLVM 14 (llvmlite < 0.44) needs it, later LLVMs remangle it
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [i8p, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen
