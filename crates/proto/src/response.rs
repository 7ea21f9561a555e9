//! Server replies: a `ReplyHeader`, then the op's response record only when
//! `err == 0` (clients never read a body after an error).

use crate::codes::OpCode;
use crate::jute::{Jute, Reader};
use crate::records::*;
use crate::{DecodeError, ErrorCode};

/// One result of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// A create without Stat (type 1): every plain create of a multi,
    /// including ones sent as create2.
    Create {
        path: String,
    },
    /// A create with Stat (type 15): createContainer and createTTL.
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    GetChildren {
        children: Vec<String>,
    },
    GetData {
        data: Option<Vec<u8>>,
        stat: Stat,
    },
    /// A failed op, or with `Ok` an op before the failing one of a failed multi.
    Error(ErrorCode),
}

impl MultiResult {
    fn op(&self) -> i32 {
        match self {
            MultiResult::Create { .. } => OpCode::Create.code(),
            MultiResult::Create2 { .. } => OpCode::Create2.code(),
            MultiResult::Delete => OpCode::Delete.code(),
            MultiResult::SetData { .. } => OpCode::SetData.code(),
            MultiResult::Check => OpCode::Check.code(),
            MultiResult::GetChildren { .. } => OpCode::GetChildren.code(),
            MultiResult::GetData { .. } => OpCode::GetData.code(),
            MultiResult::Error(_) => OpCode::Error.code(),
        }
    }
}

/// A response body, one variant per record shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Ops answered with a header alone: delete, ping, setWatches,
    /// checkWatches, removeWatches, closeSession, auth.
    Empty,
    Create(CreateResponse),
    Create2(Create2Response),
    /// exists, setData, setACL.
    Stat(StatResponse),
    GetData(GetDataResponse),
    GetAcl(GetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    /// sync echoes its path.
    Sync(PathResponse),
    Multi(Vec<MultiResult>),
    GetEphemerals(GetEphemeralsResponse),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// addWatch answers `ErrorResponse{0}`.
    AddWatch(ErrorResponse),
    WhoAmI(WhoAmIResponse),
    Sasl(SaslResponse),
}

impl Response {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Response::Empty => {}
            Response::Create(x) => x.encode(out),
            Response::Create2(x) => x.encode(out),
            Response::Stat(x) => x.encode(out),
            Response::GetData(x) => x.encode(out),
            Response::GetAcl(x) => x.encode(out),
            Response::GetChildren(x) => x.encode(out),
            Response::GetChildren2(x) => x.encode(out),
            Response::Sync(x) => x.encode(out),
            Response::Multi(results) => encode_multi_results(results, out),
            Response::GetEphemerals(x) => x.encode(out),
            Response::GetAllChildrenNumber(x) => x.encode(out),
            Response::AddWatch(x) => x.encode(out),
            Response::WhoAmI(x) => x.encode(out),
            Response::Sasl(x) => x.encode(out),
        }
    }

    /// Decodes the body of a successful reply to `op`; for clients and tests.
    pub fn decode(op: OpCode, body: &[u8]) -> Result<Response, DecodeError> {
        let mut r = Reader::new(body);
        let response = match op {
            OpCode::Create => Response::Create(Jute::decode(&mut r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Jute::decode(&mut r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => {
                Response::Stat(Jute::decode(&mut r)?)
            }
            OpCode::GetData | OpCode::Reconfig => Response::GetData(Jute::decode(&mut r)?),
            OpCode::GetAcl => Response::GetAcl(Jute::decode(&mut r)?),
            OpCode::GetChildren => Response::GetChildren(Jute::decode(&mut r)?),
            OpCode::GetChildren2 => Response::GetChildren2(Jute::decode(&mut r)?),
            OpCode::Sync => Response::Sync(Jute::decode(&mut r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(decode_multi_results(&mut r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(Jute::decode(&mut r)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(Jute::decode(&mut r)?),
            OpCode::AddWatch => Response::AddWatch(Jute::decode(&mut r)?),
            OpCode::WhoAmI => Response::WhoAmI(Jute::decode(&mut r)?),
            OpCode::Sasl => Response::Sasl(Jute::decode(&mut r)?),
            _ => Response::Empty,
        };
        r.finish()?;
        Ok(response)
    }
}

fn encode_multi_results(results: &[MultiResult], out: &mut Vec<u8>) {
    for result in results {
        let err = match result {
            MultiResult::Error(code) => code.code(),
            _ => 0,
        };
        MultiHeader {
            op: result.op(),
            done: false,
            err,
        }
        .encode(out);
        match result {
            MultiResult::Create { path } => CreateResponse { path: path.clone() }.encode(out),
            MultiResult::Create2 { path, stat } => Create2Response {
                path: path.clone(),
                stat: stat.clone(),
            }
            .encode(out),
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData { stat } => stat.encode(out),
            MultiResult::GetChildren { children } => children.encode(out),
            MultiResult::GetData { data, stat } => {
                data.encode(out);
                stat.encode(out);
            }
            MultiResult::Error(code) => ErrorResponse { err: code.code() }.encode(out),
        }
    }
    MultiHeader::END.encode(out);
}

fn decode_multi_results(r: &mut Reader<'_>) -> Result<Vec<MultiResult>, DecodeError> {
    let mut results = Vec::new();
    loop {
        let header = MultiHeader::decode(r)?;
        if header.done {
            return Ok(results);
        }
        let result = match OpCode::from_code(header.op) {
            Some(OpCode::Create) => MultiResult::Create {
                path: Jute::decode(r)?,
            },
            Some(OpCode::Create2) => {
                let x = Create2Response::decode(r)?;
                MultiResult::Create2 {
                    path: x.path,
                    stat: x.stat,
                }
            }
            Some(OpCode::Delete) => MultiResult::Delete,
            Some(OpCode::Check) => MultiResult::Check,
            Some(OpCode::SetData) => MultiResult::SetData {
                stat: Jute::decode(r)?,
            },
            Some(OpCode::GetChildren) => MultiResult::GetChildren {
                children: Jute::decode(r)?,
            },
            Some(OpCode::GetData) => {
                let x = GetDataResponse::decode(r)?;
                MultiResult::GetData {
                    data: x.data,
                    stat: x.stat,
                }
            }
            Some(OpCode::Error) => {
                let body = ErrorResponse::decode(r)?;
                let code = ErrorCode::from_code(body.err)
                    .ok_or(DecodeError::UnknownErrorCode { code: body.err })?;
                MultiResult::Error(code)
            }
            _ => return Err(DecodeError::BadMultiOp { op: header.op }),
        };
        results.push(result);
    }
}
