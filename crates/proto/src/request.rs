//! Client requests: a `RequestHeader` followed by the record its op code
//! names. [`Request::decode`] turns one frame into a typed request.

use crate::codes::OpCode;
use crate::jute::{Jute, Reader};
use crate::records::*;
use crate::{DecodeError, ErrorCode};

/// One op of a `multi` (14) request. ZooKeeper rebuilds every create of a
/// multi from its flags (`Op.create`), so a create2 inside a multi is
/// answered like a plain create; we keep the op code the client sent only to
/// re-encode it faithfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create { op: OpCode, request: CreateRequest },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
}

/// One op of a `multiRead` (22) request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiReadOp {
    GetChildren(PathWatchRequest),
    GetData(PathWatchRequest),
    /// A write op in a multiRead. ZooKeeper's `MultiOperationRecord` decodes
    /// it (only mixing reads and writes is a decoding error) and the server
    /// then refuses it with MarshallingError while answering.
    Write(MultiOp),
}

/// A decoded client request, one variant per op code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    /// Only valid inside a multi; top-level it is answered Unimplemented.
    Check(CheckVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiReadOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchesRequest),
    RemoveWatches(WatchesRequest),
    DeleteContainer(DeleteContainerRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Sasl(SaslRequest),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

/// Why a frame could not become a [`Request`]. The two cases get different
/// answers from ZooKeeper: an op code it does not know is `Unimplemented`
/// and closes the connection; a body that does not parse is
/// `MarshallingError` and the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("unknown op code {0}")]
    UnknownOp(i32),
    #[error("malformed {op:?} request: {source}")]
    Malformed {
        op: OpCode,
        #[source]
        source: DecodeError,
    },
    #[error("malformed request header: {0}")]
    Header(#[source] DecodeError),
}

impl RequestError {
    /// The error code ZooKeeper answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            RequestError::UnknownOp(_) => ErrorCode::Unimplemented,
            RequestError::Malformed { .. } | RequestError::Header(_) => ErrorCode::MarshallingError,
        }
    }
}

impl Request {
    /// Splits a frame into its header and decodes the body the op code names.
    /// On a body error the header is still returned so the reply can echo
    /// its xid.
    pub fn decode(
        frame: &[u8],
    ) -> Result<(RequestHeader, Request), (Option<RequestHeader>, RequestError)> {
        let mut r = Reader::new(frame);
        let header = RequestHeader::decode(&mut r).map_err(|e| (None, RequestError::Header(e)))?;
        let Some(op) = OpCode::from_code(header.op) else {
            let code = header.op;
            return Err((Some(header), RequestError::UnknownOp(code)));
        };
        match Self::decode_body(op, &mut r) {
            Ok(request) => Ok((header, request)),
            Err(source) => Err((Some(header), RequestError::Malformed { op, source })),
        }
    }

    fn decode_body(op: OpCode, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
        Ok(match op {
            OpCode::Create => Request::Create(Jute::decode(r)?),
            OpCode::Create2 => Request::Create2(Jute::decode(r)?),
            OpCode::CreateContainer => Request::CreateContainer(Jute::decode(r)?),
            OpCode::CreateTtl => Request::CreateTtl(Jute::decode(r)?),
            OpCode::Delete => Request::Delete(Jute::decode(r)?),
            // ZooKeeper fails a null exists path with MarshallingError (its
            // NUL check dereferences it); other reads treat null as absent.
            OpCode::Exists => {
                let path = r.read_ustring()?.ok_or(DecodeError::NullPath)?;
                Request::Exists(PathWatchRequest {
                    path,
                    watch: r.read_bool()?,
                })
            }
            OpCode::GetData => Request::GetData(Jute::decode(r)?),
            OpCode::SetData => Request::SetData(Jute::decode(r)?),
            OpCode::GetAcl => Request::GetAcl(Jute::decode(r)?),
            OpCode::SetAcl => Request::SetAcl(Jute::decode(r)?),
            OpCode::GetChildren => Request::GetChildren(Jute::decode(r)?),
            OpCode::GetChildren2 => Request::GetChildren2(Jute::decode(r)?),
            OpCode::Sync => Request::Sync(Jute::decode(r)?),
            OpCode::Ping => Request::Ping,
            OpCode::Check => Request::Check(Jute::decode(r)?),
            OpCode::Multi => Request::Multi(decode_multi(r)?),
            OpCode::MultiRead => Request::MultiRead(decode_multi_read(r)?),
            OpCode::Reconfig => Request::Reconfig(Jute::decode(r)?),
            OpCode::CheckWatches => Request::CheckWatches(Jute::decode(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(Jute::decode(r)?),
            // deleteContainer's body is the raw UTF-8 path, not a record
            // (`PrepRequestProcessor`: `new String(request.request.array())`).
            OpCode::DeleteContainer => Request::DeleteContainer(DeleteContainerRequest {
                path: Some(r.take_rest().to_vec()),
            }),
            OpCode::Auth => Request::Auth(Jute::decode(r)?),
            OpCode::SetWatches => Request::SetWatches(Jute::decode(r)?),
            OpCode::SetWatches2 => Request::SetWatches2(Jute::decode(r)?),
            OpCode::Sasl => Request::Sasl(Jute::decode(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(Jute::decode(r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Jute::decode(r)?),
            OpCode::AddWatch => Request::AddWatch(Jute::decode(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            // Internal txn types a client cannot send.
            OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::NotARequest { op: op.code() });
            }
        })
    }

    pub fn op(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Encodes the body (without header); used by clients and tests.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Request::Create(x) | Request::Create2(x) | Request::CreateContainer(x) => x.encode(out),
            Request::CreateTtl(x) => x.encode(out),
            Request::Delete(x) => x.encode(out),
            Request::Exists(x)
            | Request::GetData(x)
            | Request::GetChildren(x)
            | Request::GetChildren2(x) => x.encode(out),
            Request::SetData(x) => x.encode(out),
            Request::GetAcl(x)
            | Request::Sync(x)
            | Request::GetEphemerals(x)
            | Request::GetAllChildrenNumber(x) => x.encode(out),
            Request::SetAcl(x) => x.encode(out),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::Check(x) => x.encode(out),
            Request::Multi(ops) => encode_multi(ops, out),
            Request::MultiRead(ops) => encode_multi_read(ops, out),
            Request::Reconfig(x) => x.encode(out),
            Request::CheckWatches(x) | Request::RemoveWatches(x) => x.encode(out),
            Request::DeleteContainer(x) => {
                out.extend_from_slice(x.path.as_deref().unwrap_or_default());
            }
            Request::Auth(x) => x.encode(out),
            Request::SetWatches(x) => x.encode(out),
            Request::SetWatches2(x) => x.encode(out),
            Request::Sasl(x) => x.encode(out),
            Request::AddWatch(x) => x.encode(out),
        }
    }

    /// Header plus body, without the frame length.
    pub fn encode(&self, xid: i32, out: &mut Vec<u8>) {
        RequestHeader {
            xid,
            op: self.op().code(),
        }
        .encode(out);
        self.encode_body(out);
    }
}

fn decode_multi(r: &mut Reader<'_>) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let header = MultiHeader::decode(r)?;
        if header.done {
            return Ok(ops);
        }
        // Reads in a write multi: "Mixing different kind of ops", or a
        // read-only multi that ZooKeeper cannot prepare either.
        ops.push(decode_multi_write_op(header.op, r)?);
    }
}

fn decode_multi_write_op(op: i32, r: &mut Reader<'_>) -> Result<MultiOp, DecodeError> {
    let code = OpCode::from_code(op).ok_or(DecodeError::BadMultiOp { op })?;
    Ok(match code {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => MultiOp::Create {
            op: code,
            request: Jute::decode(r)?,
        },
        OpCode::CreateTtl => MultiOp::CreateTtl(Jute::decode(r)?),
        OpCode::Delete => MultiOp::Delete(Jute::decode(r)?),
        OpCode::SetData => MultiOp::SetData(Jute::decode(r)?),
        OpCode::Check => MultiOp::Check(Jute::decode(r)?),
        _ => return Err(DecodeError::BadMultiOp { op }),
    })
}

/// A multiRead may hold only reads or only writes (the writes are refused
/// later); mixing the two is a decoding error, as in ZooKeeper.
fn decode_multi_read(r: &mut Reader<'_>) -> Result<Vec<MultiReadOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let header = MultiHeader::decode(r)?;
        if header.done {
            return Ok(ops);
        }
        let op = match OpCode::from_code(header.op) {
            Some(OpCode::GetChildren) => MultiReadOp::GetChildren(Jute::decode(r)?),
            Some(OpCode::GetData) => MultiReadOp::GetData(Jute::decode(r)?),
            _ => MultiReadOp::Write(decode_multi_write_op(header.op, r)?),
        };
        let is_write = matches!(op, MultiReadOp::Write(_));
        if ops
            .first()
            .is_some_and(|first| matches!(first, MultiReadOp::Write(_)) != is_write)
        {
            return Err(DecodeError::BadMultiOp { op: header.op });
        }
        ops.push(op);
    }
}

fn encode_multi(ops: &[MultiOp], out: &mut Vec<u8>) {
    for op in ops {
        encode_multi_write_op(op, out);
    }
    MultiHeader::END.encode(out);
}

fn encode_multi_write_op(op: &MultiOp, out: &mut Vec<u8>) {
    let code = match op {
        MultiOp::Create { op, .. } => *op,
        MultiOp::CreateTtl(_) => OpCode::CreateTtl,
        MultiOp::Delete(_) => OpCode::Delete,
        MultiOp::SetData(_) => OpCode::SetData,
        MultiOp::Check(_) => OpCode::Check,
    };
    MultiHeader {
        op: code.code(),
        done: false,
        err: -1,
    }
    .encode(out);
    match op {
        MultiOp::Create { request, .. } => request.encode(out),
        MultiOp::CreateTtl(x) => x.encode(out),
        MultiOp::Delete(x) => x.encode(out),
        MultiOp::SetData(x) => x.encode(out),
        MultiOp::Check(x) => x.encode(out),
    }
}

fn encode_multi_read(ops: &[MultiReadOp], out: &mut Vec<u8>) {
    for op in ops {
        let (code, body) = match op {
            MultiReadOp::GetChildren(x) => (OpCode::GetChildren, x),
            MultiReadOp::GetData(x) => (OpCode::GetData, x),
            MultiReadOp::Write(write) => {
                encode_multi_write_op(write, out);
                continue;
            }
        };
        MultiHeader {
            op: code.code(),
            done: false,
            err: -1,
        }
        .encode(out);
        body.encode(out);
    }
    MultiHeader::END.encode(out);
}
