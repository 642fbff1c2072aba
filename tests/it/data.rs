//! Data a scientist keeps: N-D array outputs as `.npy` and TIFF.

use std::time::Duration;

use serde_json::Value;

use crate::support::{json_of, spawn_microscope};

/// Reads a `.npy` (version 1.0, as the server writes it): (header, data bytes).
fn parse_npy(bytes: &[u8]) -> (String, &[u8]) {
    assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"), "not .npy");
    let length = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..10 + length].to_vec()).unwrap();
    (header, &bytes[10 + length..])
}

#[tokio::test]
async fn an_array_output_has_its_shape_and_dtype_and_is_served_as_npy_and_tiff() {
    let address = spawn_microscope(labthings::ConnectionOptions::default()).await;
    let http = reqwest::Client::new();
    let invocation = json_of(
        http.post(format!("http://{address}/camera/capture_array?wait=10"))
            .timeout(Duration::from_secs(20)),
    )
    .await;
    assert_eq!(invocation["status"], "completed", "{invocation}");
    let output = &invocation["output"];
    assert_eq!(output["shape"], serde_json::json!([480, 640]));
    assert_eq!(output["dtype"], "uint16");
    assert_eq!(output["media_type"], "application/x-npy");
    let href = output["href"].as_str().unwrap();

    let npy = http.get(href).send().await.unwrap();
    assert_eq!(npy.headers()["content-type"], "application/x-npy");
    let npy = npy.bytes().await.unwrap();
    let (header, data) = parse_npy(&npy);
    assert!(
        header.contains("'descr': '<u2'") && header.contains("'shape': (480, 640)"),
        "{header}"
    );
    assert_eq!(data.len(), 480 * 640 * 2);
    let values: Vec<u16> = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    assert!(values.iter().any(|&v| v > 255), "16-bit values, not 8-bit");

    // The same array as TIFF, by Accept and by extension: 16-bit, equal value for value.
    for request in [
        http.get(href).header("accept", "image/tiff"),
        http.get(format!("{href}.tiff")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["content-type"], "image/tiff");
        let tiff = response.bytes().await.unwrap();
        let mut decoder = tiff::decoder::Decoder::new(std::io::Cursor::new(tiff.to_vec())).unwrap();
        assert_eq!(decoder.dimensions().unwrap(), (640, 480));
        match decoder.read_image().unwrap() {
            tiff::decoder::DecodingResult::U16(pixels) => assert_eq!(pixels, values),
            other => panic!("not 16-bit: {other:?}"),
        }
    }
    let explicit = http
        .get(format!("{href}.npy"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(explicit, npy);
    let unknown = http.get(format!("{href}.png")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    // The output route and the one-call form serve the array too.
    let id = invocation["id"].as_str().unwrap();
    let output = http
        .get(format!("http://{address}/action_invocations/{id}/output"))
        .send()
        .await
        .unwrap();
    assert_eq!(output.headers()["content-type"], "application/x-npy");
    let run = http
        .post(format!("http://{address}/camera/capture_array/run"))
        .header("accept", "image/tiff")
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), 200);
    assert_eq!(run.headers()["content-type"], "image/tiff");
    // The TD describes the output as an array link.
    let td: Value = http
        .get(format!("http://{address}/camera/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schema = &td["actions"]["capture_array"]["output"];
    assert!(schema["properties"]["shape"].is_object(), "{schema}");
    assert!(schema["properties"]["dtype"].is_object(), "{schema}");
}

#[test]
fn a_one_dimensional_array_is_no_image() {
    let line = labthings::NdArray::new([4], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    assert!(line.to_tiff().is_none());
    assert_eq!(line.dtype(), "float32");
}
