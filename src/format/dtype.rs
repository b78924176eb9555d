//! Element types, named exactly as torch names them (`torch.float32` → `"float32"`).
//!
//! Contract: every dtype torch can save, with its element size, its legacy storage class (for
//! `_rebuild_tensor_v2`), and its safetensors name where one exists.

use serde::{Deserialize, Serialize};

macro_rules! dtypes {
    ($( $v:ident = $name:literal, $size:expr, $storage:expr, $st:expr, $kind:ident; )*) => {
        /// A tensor element type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum DType { $( #[serde(rename = $name)] $v, )* }

        impl DType {
            /// Every dtype, in declaration order.
            pub const ALL: &'static [DType] = &[ $( DType::$v, )* ];
            /// torch's name without `torch.`.
            pub fn name(self) -> &'static str { match self { $( DType::$v => $name, )* } }
            /// Bytes per stored element (packed 4-bit types count one byte per stored pair).
            pub fn size(self) -> usize { match self { $( DType::$v => $size, )* } }
            /// The legacy typed-storage class (`FloatStorage`), if this dtype has one.
            pub fn storage_class(self) -> Option<&'static str> { match self { $( DType::$v => $storage, )* } }
            /// The safetensors dtype string, if safetensors can hold it.
            pub fn safetensors_name(self) -> Option<&'static str> { match self { $( DType::$v => $st, )* } }
            /// What kind of numbers this holds.
            pub fn kind(self) -> DKind { match self { $( DType::$v => DKind::$kind, )* } }
        }
    };
}

/// Broad families of dtypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DKind {
    Float,
    Complex,
    SignedInt,
    UnsignedInt,
    Bool,
    Quantized,
    Bits,
}

dtypes! {
    F64 = "float64", 8, Some("DoubleStorage"), Some("F64"), Float;
    F32 = "float32", 4, Some("FloatStorage"), Some("F32"), Float;
    F16 = "float16", 2, Some("HalfStorage"), Some("F16"), Float;
    BF16 = "bfloat16", 2, Some("BFloat16Storage"), Some("BF16"), Float;
    F8E4M3FN = "float8_e4m3fn", 1, None, Some("F8_E4M3"), Float;
    F8E5M2 = "float8_e5m2", 1, None, Some("F8_E5M2"), Float;
    F8E4M3FNUZ = "float8_e4m3fnuz", 1, None, Some("F8_E4M3FNUZ"), Float;
    F8E5M2FNUZ = "float8_e5m2fnuz", 1, None, Some("F8_E5M2FNUZ"), Float;
    F8E8M0FNU = "float8_e8m0fnu", 1, None, Some("F8_E8M0"), Float;
    F4E2M1FNX2 = "float4_e2m1fn_x2", 1, None, None, Float;
    C128 = "complex128", 16, Some("ComplexDoubleStorage"), None, Complex;
    C64 = "complex64", 8, Some("ComplexFloatStorage"), Some("C64"), Complex;
    C32 = "complex32", 4, None, None, Complex;
    I64 = "int64", 8, Some("LongStorage"), Some("I64"), SignedInt;
    I32 = "int32", 4, Some("IntStorage"), Some("I32"), SignedInt;
    I16 = "int16", 2, Some("ShortStorage"), Some("I16"), SignedInt;
    I8 = "int8", 1, Some("CharStorage"), Some("I8"), SignedInt;
    U64 = "uint64", 8, None, Some("U64"), UnsignedInt;
    U32 = "uint32", 4, None, Some("U32"), UnsignedInt;
    U16 = "uint16", 2, None, Some("U16"), UnsignedInt;
    U8 = "uint8", 1, Some("ByteStorage"), Some("U8"), UnsignedInt;
    Bool = "bool", 1, Some("BoolStorage"), Some("BOOL"), Bool;
    QInt8 = "qint8", 1, Some("QInt8Storage"), None, Quantized;
    QUInt8 = "quint8", 1, Some("QUInt8Storage"), None, Quantized;
    QInt32 = "qint32", 4, Some("QInt32Storage"), None, Quantized;
    QUInt4x2 = "quint4x2", 1, Some("QUInt4x2Storage"), None, Quantized;
    QUInt2x4 = "quint2x4", 1, Some("QUInt2x4Storage"), None, Quantized;
    Bits8 = "bits8", 1, None, None, Bits;
    Bits16 = "bits16", 2, None, None, Bits;
    Bits1x8 = "bits1x8", 1, None, None, Bits;
    Bits2x4 = "bits2x4", 1, None, None, Bits;
    Bits4x2 = "bits4x2", 1, None, None, Bits;
}

impl DType {
    /// Parse torch's name (`"float32"`, also accepting `"torch.float32"` and common aliases).
    pub fn from_name(s: &str) -> Option<DType> {
        let s = s.strip_prefix("torch.").unwrap_or(s);
        let alias = match s {
            "float" => "float32",
            "double" => "float64",
            "half" => "float16",
            "long" => "int64",
            "int" => "int32",
            "short" => "int16",
            "cfloat" => "complex64",
            "cdouble" => "complex128",
            "chalf" => "complex32",
            "bf16" => "bfloat16",
            "fp16" => "float16",
            "fp32" => "float32",
            other => other,
        };
        DType::ALL.iter().copied().find(|d| d.name() == alias)
    }
    /// The dtype of a legacy storage class name (`FloatStorage`, `HalfStorage`, ...). The module is
    /// ignored, as torch does (`torch.cuda.HalfStorage` is float16).
    pub fn from_storage_class(class: &str) -> Option<DType> {
        DType::ALL
            .iter()
            .copied()
            .find(|d| d.storage_class() == Some(class))
    }
    /// The dtype of a safetensors dtype string.
    pub fn from_safetensors(s: &str) -> Option<DType> {
        DType::ALL
            .iter()
            .copied()
            .find(|d| d.safetensors_name() == Some(s))
    }
    /// True for real floating-point types (castable by the editor).
    pub fn is_float(self) -> bool {
        self.kind() == DKind::Float
    }
    /// The size of one scalar component for byte swapping (complex swaps each half).
    pub fn swap_unit(self) -> usize {
        match self.kind() {
            DKind::Complex => self.size() / 2,
            _ => self.size(),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(*d));
            if let Some(c) = d.storage_class() {
                assert_eq!(DType::from_storage_class(c), Some(*d));
            }
            if let Some(s) = d.safetensors_name() {
                assert_eq!(DType::from_safetensors(s), Some(*d));
            }
        }
        assert_eq!(DType::from_name("torch.half"), Some(DType::F16));
        assert_eq!(DType::from_storage_class("NopeStorage"), None);
    }
}
