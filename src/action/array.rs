//! [`NdArray`]: a numeric array (1 to 3 dimensions of `u8`, `u16`, `f32` or `f64`) as an action
//! output. Its invocation shows a link with the array's `shape` and `dtype`; the link serves it
//! as NumPy's `.npy` (by default, or `Accept: application/x-npy`, or the link with `.npy`
//! appended) or, for 2-D and 3-D arrays, as TIFF (`Accept: image/tiff` or `.tiff`; feature
//! `tiff`), 16-bit kept as 16-bit and floats as floats. A 3-D array is a stack of 2-D images,
//! one TIFF page each.

use serde::Serialize;

/// The media type `.npy` files are served as (NumPy registers none).
pub const NPY_MEDIA_TYPE: &str = "application/x-npy";
/// The media type of TIFF images.
pub const TIFF_MEDIA_TYPE: &str = "image/tiff";

/// The values of an [`NdArray`], row-major (C order).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ArrayData {
    /// 8-bit unsigned integers (`uint8`).
    U8(Vec<u8>),
    /// 16-bit unsigned integers (`uint16`), such as a scientific camera's raw image.
    U16(Vec<u16>),
    /// 32-bit floats (`float32`).
    F32(Vec<f32>),
    /// 64-bit floats (`float64`).
    F64(Vec<f64>),
}

impl ArrayData {
    /// The bytes the values take in memory.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Self::U8(values) => values.len(),
            Self::U16(values) => values.len() * 2,
            Self::F32(values) => values.len() * 4,
            Self::F64(values) => values.len() * 8,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::U8(values) => values.len(),
            Self::U16(values) => values.len(),
            Self::F32(values) => values.len(),
            Self::F64(values) => values.len(),
        }
    }

    /// NumPy's name of the element type.
    fn dtype(&self) -> &'static str {
        match self {
            Self::U8(_) => "uint8",
            Self::U16(_) => "uint16",
            Self::F32(_) => "float32",
            Self::F64(_) => "float64",
        }
    }

    /// NumPy's type string, little-endian.
    fn descr(&self) -> &'static str {
        match self {
            Self::U8(_) => "|u1",
            Self::U16(_) => "<u2",
            Self::F32(_) => "<f4",
            Self::F64(_) => "<f8",
        }
    }

    fn little_endian_bytes(&self) -> Vec<u8> {
        match self {
            Self::U8(values) => values.clone(),
            Self::U16(values) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Self::F32(values) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Self::F64(values) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

macro_rules! array_data_from {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<Vec<$t>> for ArrayData {
            fn from(values: Vec<$t>) -> Self {
                Self::$variant(values)
            }
        }
    )*};
}
array_data_from!(u8 => U8, u16 => U16, f32 => F32, f64 => F64);

/// Why values and a shape do not make an [`NdArray`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArrayError {
    /// Not 1, 2 or 3 dimensions.
    #[error("an array has 1, 2 or 3 dimensions, not {0}")]
    Dimensions(usize),
    /// Names for the axes or the columns that do not match the shape.
    #[error("{actual} {what} given for {expected}")]
    Names {
        /// `axis names` or `column names`.
        what: &'static str,
        /// How many the shape has.
        expected: usize,
        /// How many were given.
        actual: usize,
    },
    /// The shape does not hold the number of values given.
    #[error("shape {shape:?} holds {expected} values, but {actual} were given")]
    Length {
        /// The shape given.
        shape: Vec<usize>,
        /// The values it holds.
        expected: usize,
        /// The values given.
        actual: usize,
    },
}

/// A numeric array (1 to 3 dimensions of `u8`, `u16`, `f32` or `f64`) as an action output.
///
/// Its invocation shows a link with the array's `shape` and `dtype`; the link serves it as
/// NumPy's `.npy` (by default, or `Accept: application/x-npy`, or the link with `.npy`
/// appended) or, for 2-D and 3-D arrays, as TIFF (`Accept: image/tiff` or `.tiff`; feature
/// `tiff`), 16-bit kept as 16-bit and floats as floats. A 3-D array is a stack of 2-D images,
/// one TIFF page each.
///
/// # Examples
///
/// ```
/// use labthings::NdArray;
///
/// // A 2 x 3 image of 16-bit values, row by row.
/// let image = NdArray::new([2, 3], vec![0u16, 1, 2, 1000, 2000, 65535]).unwrap();
/// assert_eq!(image.shape(), &[2, 3]);
/// assert_eq!(image.dtype(), "uint16");
/// assert!(NdArray::new([2, 2], vec![1u8, 2, 3]).is_err());
///
/// // A table: three readings of time, voltage and current, with names, a unit and notes.
/// let table = NdArray::new([3, 3], vec![0.0, 1.5, 0.1, 1.0, 1.6, 0.1, 2.0, 1.7, 0.2])
///     .unwrap()
///     .with_axes(["reading", "quantity"])
///     .unwrap()
///     .with_columns(["t (s)", "V (V)", "I (A)"])
///     .unwrap()
///     .with_metadata("sample", "A12")
///     .with_metadata("temperature_c", 21.5);
/// assert_eq!(table.columns(), Some(&["t (s)".to_owned(), "V (V)".into(), "I (A)".into()][..]));
/// assert!(table.clone().with_axes(["only one"]).is_err());
/// ```
///
/// Names, units and metadata go in the invocation's output (`axes`, `columns`, `unit`,
/// `metadata`) and in the TIFF's `ImageDescription` as JSON (tifffile reads it as
/// `TiffFile.shaped_metadata`). The `.npy` format has no room for them: numpy refuses a header
/// with other keys.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    shape: Vec<usize>,
    data: ArrayData,
    labels: Labels,
}

/// What an array's numbers mean: names of its axes and of the last axis's entries, the unit of
/// its values, and free metadata.
#[derive(Debug, Clone, PartialEq, Default, Serialize, schemars::JsonSchema)]
pub(crate) struct Labels {
    /// A name for each axis (`["y", "x"]`, `["reading", "quantity"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) axes: Option<Vec<String>>,
    /// A name for each entry of the last axis: the columns of a table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) columns: Option<Vec<String>>,
    /// The unit of the values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unit: Option<String>,
    /// Anything else worth keeping with the numbers (the sample, the settings).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub(crate) metadata: serde_json::Map<String, serde_json::Value>,
}

impl NdArray {
    /// An array of `shape` (1 to 3 dimensions, the last varying fastest) holding `values`.
    ///
    /// # Errors
    ///
    /// [`ArrayError`] if the shape has another number of dimensions, or does not hold exactly
    /// the values given.
    pub fn new(
        shape: impl Into<Vec<usize>>,
        values: impl Into<ArrayData>,
    ) -> Result<Self, ArrayError> {
        let (shape, data) = (shape.into(), values.into());
        if !(1..=3).contains(&shape.len()) {
            return Err(ArrayError::Dimensions(shape.len()));
        }
        let expected = shape.iter().product::<usize>();
        if expected != data.len() {
            return Err(ArrayError::Length {
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Self {
            shape,
            data,
            labels: Labels::default(),
        })
    }

    /// Names each axis (`["y", "x"]`).
    ///
    /// # Errors
    ///
    /// [`ArrayError::Names`] unless there is one name per dimension.
    pub fn with_axes<I, S>(mut self, names: I) -> Result<Self, ArrayError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.len() != self.shape.len() {
            return Err(ArrayError::Names {
                what: "axis names",
                expected: self.shape.len(),
                actual: names.len(),
            });
        }
        self.labels.axes = Some(names);
        Ok(self)
    }

    /// Names each entry of the last axis: the columns of a table (`["t (s)", "V (V)"]`).
    ///
    /// # Errors
    ///
    /// [`ArrayError::Names`] unless there is one name per entry of the last axis.
    pub fn with_columns<I, S>(mut self, names: I) -> Result<Self, ArrayError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let last = self.shape.last().copied().unwrap_or(0);
        if names.len() != last {
            return Err(ArrayError::Names {
                what: "column names",
                expected: last,
                actual: names.len(),
            });
        }
        self.labels.columns = Some(names);
        Ok(self)
    }

    /// The unit of the values (`"counts"`, `"nm"`).
    #[must_use]
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.labels.unit = Some(unit.into());
        self
    }

    /// Keeps `value` under `key` with the array (the sample, an exposure, a note). A value that
    /// is not JSON (a map with non-string keys) is kept as its error message.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value)
            .unwrap_or_else(|error| serde_json::Value::String(error.to_string()));
        self.labels.metadata.insert(key.into(), value);
        self
    }

    /// The axes' names, if given.
    pub fn axes(&self) -> Option<&[String]> {
        self.labels.axes.as_deref()
    }

    /// The columns' names, if given.
    pub fn columns(&self) -> Option<&[String]> {
        self.labels.columns.as_deref()
    }

    /// The unit of the values, if given.
    pub fn unit(&self) -> Option<&str> {
        self.labels.unit.as_deref()
    }

    /// The metadata kept with the array.
    pub fn metadata(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.labels.metadata
    }

    /// The TIFF's `ImageDescription`: the shape (which tifffile reads the pages by) and the
    /// labels, as JSON in ASCII (TIFF's text is 7-bit: other characters are `\u` escapes).
    #[cfg(feature = "tiff")]
    fn tiff_description(&self) -> String {
        let mut description = serde_json::json!({"shape": self.shape});
        if let (Some(object), Ok(serde_json::Value::Object(labels))) = (
            description.as_object_mut(),
            serde_json::to_value(&self.labels),
        ) {
            object.extend(labels);
        }
        let mut ascii = String::new();
        for c in description.to_string().chars() {
            if c.is_ascii() {
                ascii.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    ascii.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        ascii
    }

    /// The size of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// NumPy's name of the element type: `uint8`, `uint16`, `float32` or `float64`.
    pub fn dtype(&self) -> &'static str {
        self.data.dtype()
    }

    /// The values.
    pub fn data(&self) -> &ArrayData {
        &self.data
    }

    /// The array in NumPy's `.npy` format (version 1.0, little-endian, C order), which
    /// `numpy.load` reads as it is.
    pub fn to_npy(&self) -> Vec<u8> {
        let shape = match self.shape.as_slice() {
            [only] => format!("({only},)"),
            many => format!(
                "({})",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
            self.data.descr()
        );
        // Magic (6), version (2) and header length (2), then the header padded with spaces
        // and ended by a newline so that the data starts at a multiple of 64 bytes.
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let length = u16::try_from(header.len()).expect("a header of at most three sizes is short");
        let mut bytes = Vec::with_capacity(10 + header.len() + self.data.len() * 8);
        bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&self.data.little_endian_bytes());
        bytes
    }

    /// The array as a TIFF image: 2-D as one page (height x width), 3-D as pages of the last
    /// two dimensions. `None` for a 1-D array, which is no image.
    ///
    /// # Errors
    ///
    /// The TIFF encoder's, for sizes TIFF cannot hold.
    #[cfg(feature = "tiff")]
    pub fn to_tiff(&self) -> Option<Result<Vec<u8>, String>> {
        use tiff::encoder::{TiffEncoder, colortype};
        let (pages, height, width) = match self.shape.as_slice() {
            [height, width] => (1, *height, *width),
            [pages, height, width] => (*pages, *height, *width),
            _ => return None,
        };
        let encode = || -> Result<Vec<u8>, tiff::TiffError> {
            let mut out = std::io::Cursor::new(Vec::new());
            {
                let mut encoder = TiffEncoder::new(&mut out)?;
                let (w, h) = (
                    u32::try_from(width).unwrap_or(u32::MAX),
                    u32::try_from(height).unwrap_or(u32::MAX),
                );
                let page = width * height;
                let description = self.tiff_description();
                // The description goes on the first page, where tifffile looks for it.
                macro_rules! page {
                    ($color:ty, $values:expr, $n:expr) => {{
                        let mut image = encoder.new_image::<$color>(w, h)?;
                        if $n == 0 {
                            image.encoder().write_tag(
                                tiff::tags::Tag::ImageDescription,
                                description.as_str(),
                            )?;
                        }
                        image.write_data($values)?;
                    }};
                }
                for n in 0..pages {
                    let range = n * page..(n + 1) * page;
                    match &self.data {
                        ArrayData::U8(v) => page!(colortype::Gray8, &v[range], n),
                        ArrayData::U16(v) => page!(colortype::Gray16, &v[range], n),
                        ArrayData::F32(v) => page!(colortype::Gray32Float, &v[range], n),
                        ArrayData::F64(v) => page!(colortype::Gray64Float, &v[range], n),
                    }
                }
            }
            Ok(out.into_inner())
        };
        Some(encode().map_err(|error| error.to_string()))
    }
}

/// How an [`NdArray`] output appears in its invocation: the blob link, with the array's
/// `shape` and `dtype`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(
    rename = "NdArray",
    description = "A numeric array, fetched from `href` as .npy (or TIFF for images: `Accept: image/tiff`, or `href` + `.tiff`)."
)]
pub(crate) struct ArrayLink {
    /// Where to fetch the array (`.npy` by default).
    pub(crate) href: String,
    /// The media type served by default.
    pub(crate) media_type: &'static str,
    /// Always `output`.
    pub(crate) rel: &'static str,
    /// The size of each dimension.
    pub(crate) shape: Vec<usize>,
    /// NumPy's name of the element type.
    pub(crate) dtype: &'static str,
    /// A note for people reading the invocation.
    pub(crate) description: &'static str,
    /// Axis and column names, the unit and metadata, when the action gave them.
    #[serde(flatten)]
    pub(crate) labels: Labels,
}

impl ArrayLink {
    pub(crate) fn new(href: String, array: &NdArray) -> Self {
        Self {
            href,
            media_type: NPY_MEDIA_TYPE,
            rel: "output",
            shape: array.shape.clone(),
            dtype: array.dtype(),
            description: "A numeric array: fetch it from this link as .npy, or as TIFF \
                          (Accept: image/tiff, or the link with .tiff appended).",
            labels: array.labels.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_are_numpy_s_and_aligned() {
        let array = NdArray::new([2, 3], vec![1u16, 2, 3, 4, 5, 65535]).unwrap();
        let npy = array.to_npy();
        assert!(npy.starts_with(b"\x93NUMPY\x01\x00"));
        let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
        assert!(header.starts_with("{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(header.ends_with('\n'));
        assert_eq!(
            &npy[10 + header_len..],
            &[1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 255, 255]
        );
        let line = NdArray::new([3], vec![1.5f64, 2.0, -3.0]).unwrap().to_npy();
        assert!(String::from_utf8_lossy(&line).contains("'shape': (3,)"));
    }

    #[test]
    fn shapes_must_fit() {
        assert_eq!(
            NdArray::new(Vec::<usize>::new(), vec![1u8]),
            Err(ArrayError::Dimensions(0))
        );
        assert_eq!(
            NdArray::new([1, 1, 1, 1], vec![1u8]),
            Err(ArrayError::Dimensions(4))
        );
        assert!(matches!(
            NdArray::new([2, 2], vec![0f32; 3]),
            Err(ArrayError::Length {
                expected: 4,
                actual: 3,
                ..
            })
        ));
    }

    #[cfg(feature = "tiff")]
    #[test]
    fn tiff_keeps_16_bit_pages() {
        let stack =
            NdArray::new([2, 2, 3], (0u16..12).map(|v| v * 5000).collect::<Vec<_>>()).unwrap();
        let tiff = stack.to_tiff().unwrap().unwrap();
        assert!(tiff.starts_with(b"II*\0"));
        let mut decoder = tiff::decoder::Decoder::new(std::io::Cursor::new(tiff)).unwrap();
        let mut pages = Vec::new();
        loop {
            assert_eq!(decoder.dimensions().unwrap(), (3, 2));
            match decoder.read_image().unwrap() {
                tiff::decoder::DecodingResult::U16(values) => pages.push(values),
                other => panic!("not 16-bit: {other:?}"),
            }
            if !decoder.more_images() {
                break;
            }
            decoder.next_image().unwrap();
        }
        assert_eq!(
            pages.concat(),
            (0u16..12).map(|v| v * 5000).collect::<Vec<_>>()
        );
        assert!(NdArray::new([4], vec![1u8; 4]).unwrap().to_tiff().is_none());
    }

    #[cfg(feature = "tiff")]
    #[test]
    fn the_labels_are_the_first_pages_description_in_ascii_json() {
        let image = NdArray::new([2, 2], vec![1.0f32, 2.0, 3.0, 4.0])
            .unwrap()
            .with_axes(["y", "x"])
            .unwrap()
            .with_unit("µm")
            .with_metadata("sample", "A12");
        let tiff = image.to_tiff().unwrap().unwrap();
        let mut decoder = tiff::decoder::Decoder::new(std::io::Cursor::new(tiff)).unwrap();
        let description = decoder
            .get_tag_ascii_string(tiff::tags::Tag::ImageDescription)
            .unwrap();
        assert!(description.is_ascii(), "{description}");
        let parsed: serde_json::Value = serde_json::from_str(&description).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"shape": [2, 2], "axes": ["y", "x"], "unit": "µm",
                "metadata": {"sample": "A12"}})
        );
    }

    #[test]
    fn the_labels_go_in_the_output_link() {
        let table = NdArray::new([2, 2], vec![1u8, 2, 3, 4])
            .unwrap()
            .with_columns(["a", "b"])
            .unwrap()
            .with_unit("V");
        let link = serde_json::to_value(ArrayLink::new("x".into(), &table)).unwrap();
        assert_eq!(link["columns"], serde_json::json!(["a", "b"]));
        assert_eq!(link["unit"], "V");
        assert!(link.get("axes").is_none() && link.get("metadata").is_none());
        let error = table.with_columns(["one"]).unwrap_err();
        assert_eq!(error.to_string(), "1 column names given for 2");
    }
}
