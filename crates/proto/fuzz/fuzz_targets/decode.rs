//! Feeds arbitrary bytes to every decoder of the `proto` crate: framing,
//! requests, the connect handshake and the response body of every op code.
//! None may panic. Whatever decodes must also survive re-encoding: after one
//! normalising pass (null strings become "", characters beyond the BMP become
//! U+FFFD as in ZooKeeper), encode-then-decode is the identity.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::{
    ConnectRequest, ConnectResponse, DEFAULT_MAX_BUFFER, OpCode, Request, Response, frame,
};

fn request_again(request: &Request) -> Request {
    let mut bytes = Vec::new();
    request.encode(7, &mut bytes);
    match Request::decode(&bytes) {
        Ok((_, again)) => again,
        Err(e) => panic!("re-encoded {request:?} does not decode: {e:?}"),
    }
}

fn response_again(op: OpCode, response: &Response) -> Response {
    let mut bytes = Vec::new();
    response.encode(&mut bytes);
    match Response::decode(op, &bytes) {
        Ok(again) => again,
        Err(e) => panic!("re-encoded {op:?} {response:?} does not decode: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    for max in [0, 16, DEFAULT_MAX_BUFFER, usize::MAX] {
        if let Ok(Some(total)) = frame::decode_frame(data, max) {
            assert!(total <= data.len() && total >= frame::LENGTH_PREFIX);
        }
    }

    if let Ok((_, request)) = Request::decode(data) {
        let once = request_again(&request);
        assert_eq!(request_again(&once), once);
    }

    if let Ok(connect) = ConnectRequest::decode(data) {
        let mut bytes = Vec::new();
        connect.encode(&mut bytes);
        assert_eq!(ConnectRequest::decode(&bytes).ok(), Some(connect));
    }
    if let Ok(connect) = ConnectResponse::decode(data) {
        let mut bytes = Vec::new();
        connect.encode(&mut bytes);
        assert_eq!(ConnectResponse::decode(&bytes).ok(), Some(connect));
    }

    for &op in OpCode::ALL {
        if let Ok(response) = Response::decode(op, data) {
            let once = response_again(op, &response);
            assert_eq!(response_again(op, &once), once);
        }
    }
});
