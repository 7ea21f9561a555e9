// Golden wire bytes from Apache ZooKeeper's own jute classes, for
// crates/proto/tests/golden.rs.
//
// Regenerate (needs only a JDK >= 11 and ZooKeeper 3.8's jars; on Debian:
// `apt-get install zookeeper`), from the repository root:
//
//   java -cp /usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar \
//       crates/proto/tests/golden/GoldenBytes.java \
//       > crates/proto/tests/golden/zookeeper-3.8.txt
//
// Output: one `name hex` line per case (lowercase hex, no separators), after
// `#` comment lines. Cases named `decode.X.in` / `decode.X.out` are inputs
// that ZooKeeper *deserializes*; `.out` is what ZooKeeper serializes back from
// the value it decoded (after turning a null list into an empty one), or
// `error` when ZooKeeper's deserializer throws. `utf8_sweep.*` is a hash of
// how ZooKeeper reads every short byte string over UTF-8's boundary bytes.
//
// Everything printed is produced by ZooKeeper's classes (generated records,
// BinaryOutputArchive, MultiOperationRecord, MultiResponse, Op, OpResult);
// only the pieces ZooKeeper itself assembles by hand (the connect handshake's
// trailing readOnly byte, request/reply headers in front of a body, frame
// length prefixes, deleteContainer's raw path body) are assembled here the
// same way ZooKeeper does it.

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.jute.BinaryInputArchive;
import org.apache.jute.BinaryOutputArchive;
import org.apache.jute.Record;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.MultiOperationRecord;
import org.apache.zookeeper.MultiResponse;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.proto.*;

public class GoldenBytes {
    interface Body {
        void write(BinaryOutputArchive oa) throws IOException;
    }

    static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder();
        for (byte b : bytes) {
            sb.append(String.format("%02x", b & 0xff));
        }
        return sb.toString();
    }

    static byte[] unhex(String s) {
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }

    static byte[] bytes(Body body) throws IOException {
        ByteArrayOutputStream baos = new ByteArrayOutputStream();
        BinaryOutputArchive oa = BinaryOutputArchive.getArchive(baos);
        body.write(oa);
        return baos.toByteArray();
    }

    static void emit(String name, Body body) throws IOException {
        System.out.println(name + " " + hex(bytes(body)));
    }

    /** Records serialized back to back, as `tag` archives them. */
    static void emitRecords(String name, Record... records) throws IOException {
        emit(name, oa -> {
            for (Record r : records) {
                r.serialize(oa, "r");
            }
        });
    }

    /** A request as the client sends it (minus the frame length). */
    static void emitRequest(String name, int xid, int op, Record body) throws IOException {
        emit(name, oa -> {
            new RequestHeader(xid, op).serialize(oa, "header");
            if (body != null) {
                body.serialize(oa, "request");
            }
        });
    }

    /** A whole frame: int32 length, then the payload (`ServerCnxn`). */
    static void emitFrame(String name, Body payload) throws IOException {
        byte[] inner = bytes(payload);
        emit(name, oa -> {
            oa.writeInt(inner.length, "len");
            for (byte b : inner) {
                oa.writeByte(b, "b");
            }
        });
    }

    interface Normalize<T> {
        void apply(T value);
    }

    /** Feeds `inHex` to ZooKeeper's deserializer and prints what it re-serializes. */
    static <T extends Record> void emitDecode(String name, String inHex, T record, Normalize<T> normalize)
            throws IOException {
        System.out.println("decode." + name + ".in " + inHex);
        String out;
        try {
            ByteArrayInputStream in = new ByteArrayInputStream(unhex(inHex));
            record.deserialize(BinaryInputArchive.getArchive(in), "r");
            if (in.available() != 0) {
                throw new IllegalStateException("case has trailing bytes");
            }
            if (normalize != null) {
                normalize.apply(record);
            }
            out = hex(bytes(oa -> record.serialize(oa, "r")));
        } catch (IOException e) {
            out = "error";
        }
        System.out.println("decode." + name + ".out " + out);
    }

    static Stat stat() {
        return new Stat(
                0x0000000100000002L, // czxid
                0x0000000100000003L, // mzxid
                1700000000000L, // ctime
                1700000001234L, // mtime
                3, // version
                -2, // cversion
                1, // aversion
                0x1234567890abcdefL, // ephemeralOwner
                5, // dataLength
                7, // numChildren
                0x0000000100000004L); // pzxid
    }

    static Stat stat2() {
        return new Stat(10, 11, 12, 13, 0, 0, 0, 0, 0, 0, 10);
    }

    static List<ACL> acls() {
        return Arrays.asList(
                new ACL(31, new Id("world", "anyone")),
                new ACL(1 | 8, new Id("digest", "user:pbd4Yz2BIx1SUl1DzRvgzX3gQqQ=")));
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static final String SMILE = "\uD83D\uDE00"; // U+1F600, outside the BMP

    public static void main(String[] args) throws Exception {
        System.out.println("# Golden jute bytes from Apache ZooKeeper 3.8 (Debian's zookeeper.jar + zookeeper-jute.jar).");
        System.out.println("# Generated by crates/proto/tests/golden/GoldenBytes.java; checked by crates/proto/tests/golden.rs.");
        System.out.println("# Regenerate from the repository root with:");
        System.out.println("#   java -cp /usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar \\");
        System.out.println("#       crates/proto/tests/golden/GoldenBytes.java > crates/proto/tests/golden/zookeeper-3.8.txt");

        // ---- primitives: strings and buffers ----
        emit("string.ascii", oa -> oa.writeString("/zookeeper/quota", "s"));
        emit("string.empty", oa -> oa.writeString("", "s"));
        emit("string.null", oa -> oa.writeString(null, "s"));
        emit("string.bmp", oa -> oa.writeString("/caf\u00e9/\u20ac/\u4e2d", "s"));
        emit("string.nul", oa -> oa.writeString("a\u0000b", "s"));
        emit("string.supplementary", oa -> oa.writeString("/x" + SMILE + "y", "s"));
        emit("buffer.null", oa -> oa.writeBuffer(null, "b"));
        emit("buffer.empty", oa -> oa.writeBuffer(new byte[0], "b"));
        emit("buffer.bytes", oa -> oa.writeBuffer(new byte[] {0, 1, (byte) 0xfe, (byte) 0xff}, "b"));

        // ---- data records ----
        emitRecords("stat", stat());
        emitRecords("id", new Id("ip", "10.0.0.0/8"));
        emitRecords("acl", new ACL(31, new Id("world", "anyone")));
        emitRecords("client_info", new ClientInfo("digest", "bob"));

        // ---- headers and events ----
        emitRecords("request_header", new RequestHeader(42, 4));
        emitRecords("reply_header", new ReplyHeader(42, 0x0000000100000005L, -101));
        emitRecords("watcher_event", new WatcherEvent(3, 3, "/app/config"));
        emitRecords("multi_header", new MultiHeader(5, false, -1));
        emitRecords("multi_header.end", new MultiHeader(-1, true, -1));

        // ---- connect handshake ----
        // ClientCnxnSocket: ConnectRequest record, then writeBool(readOnly).
        // ZooKeeperServer.processConnectRequest: ConnectResponse record, then
        // writeBool(readOnly) unless the client is old (sent no readOnly byte).
        byte[] passwd = new byte[16];
        for (int i = 0; i < 16; i++) {
            passwd[i] = (byte) (0xf0 + i);
        }
        ConnectRequest creq = new ConnectRequest(0, 0x0000000100000009L, 30000, 0x0100000000000abcL, passwd);
        emitRecords("connect_request.old", creq);
        emit("connect_request.read_only", oa -> {
            creq.serialize(oa, "connect");
            oa.writeBool(true, "readOnly");
        });
        ConnectResponse cresp = new ConnectResponse(0, 20000, 0x0100000000000abcL, passwd);
        emitRecords("connect_response.old", cresp);
        emit("connect_response.read_only", oa -> {
            cresp.serialize(oa, "connect");
            oa.writeBool(false, "readOnly");
        });
        emitRecords("connect_response.expired", new ConnectResponse(0, 0, 0, new byte[16]));

        // ---- requests: RequestHeader + body (ZooKeeper.submitRequest order) ----
        emitRequest("request.create", 1, 1, new CreateRequest("/app/node", utf8("hello"), acls(), 3));
        emitRequest("request.create2_null_data", 2, 15,
                new CreateRequest("/app/seq-", null, Arrays.asList(new ACL(31, new Id("world", "anyone"))), 2));
        emitRequest("request.create_container", 3, 19,
                new CreateRequest("/app/container", new byte[0], acls(), 4));
        emitRequest("request.create_ttl", 4, 21,
                new CreateTTLRequest("/app/ttl", utf8("t"), acls(), 5, 60000L));
        emitRequest("request.delete", 5, 2, new DeleteRequest("/app/node", -1));
        emitRequest("request.exists", 6, 3, new ExistsRequest("/app/node", true));
        emitRequest("request.get_data", 7, 4, new GetDataRequest("/app/node", false));
        emitRequest("request.set_data", 8, 5, new SetDataRequest("/app/node", utf8("world"), 3));
        emitRequest("request.get_acl", 9, 6, new GetACLRequest("/app/node"));
        emitRequest("request.set_acl", 10, 7, new SetACLRequest("/app/node", acls(), 0));
        emitRequest("request.get_children", 11, 8, new GetChildrenRequest("/app", true));
        emitRequest("request.sync", 12, 9, new SyncRequest("/app"));
        emitRequest("request.ping", -2, 11, null);
        emitRequest("request.get_children2", 13, 12, new GetChildren2Request("/app", false));
        emitRequest("request.check", 14, 13, new CheckVersionRequest("/app/node", 7));
        MultiOperationRecord multi = new MultiOperationRecord();
        multi.add(Op.create("/m/a", utf8("a"), acls(), CreateMode.PERSISTENT));
        multi.add(Op.create("/m/c", new byte[0], acls(), CreateMode.CONTAINER));
        multi.add(Op.create("/m/t", null, acls(), CreateMode.PERSISTENT_WITH_TTL, 5000L));
        multi.add(Op.delete("/m/b", 2));
        multi.add(Op.setData("/m/a", utf8("b"), -1));
        multi.add(Op.check("/m", 4));
        emitRequest("request.multi", 15, 14, multi);
        emitRequest("request.multi_empty", 16, 14, new MultiOperationRecord());
        MultiOperationRecord multiRead = new MultiOperationRecord();
        multiRead.add(Op.getChildren("/m"));
        multiRead.add(Op.getData("/m/a"));
        emitRequest("request.multi_read", 17, 22, multiRead);
        emitRequest("request.reconfig", 18, 16,
                new ReconfigRequest("server.4=h4:2888:3888;2181", "3", null, -1L));
        emitRequest("request.check_watches", 19, 17, new CheckWatchesRequest("/app", 1));
        emitRequest("request.remove_watches", 20, 18, new RemoveWatchesRequest("/app", 3));
        // deleteContainer is only ever built inside the server
        // (ContainerManager): its body is the path's raw UTF-8 bytes.
        emit("request.delete_container", oa -> {
            new RequestHeader(21, 20).serialize(oa, "header");
            for (byte b : utf8("/app/container")) {
                oa.writeByte(b, "b");
            }
        });
        emitRequest("request.auth", -4, 100, new AuthPacket(0, "digest", utf8("user:secret")));
        emitRequest("request.set_watches", -8, 101,
                new SetWatches(0x0000000100000007L, Arrays.asList("/a", "/b"), Arrays.asList("/c"), new ArrayList<>()));
        emitRequest("request.sasl", 22, 102, new GetSASLRequest(new byte[] {1, 2, 3}));
        emitRequest("request.get_ephemerals", 23, 103, new GetEphemeralsRequest("/app"));
        emitRequest("request.get_all_children_number", 24, 104, new GetAllChildrenNumberRequest("/app"));
        emitRequest("request.set_watches2", -8, 105,
                new SetWatches2(0x0000000100000007L, Arrays.asList("/a"), Arrays.asList("/b"),
                        Arrays.asList("/c"), Arrays.asList("/d"), Arrays.asList("/e", "/f")));
        emitRequest("request.add_watch", 25, 106, new AddWatchRequest("/app", 1));
        emitRequest("request.whoami", 26, 107, null);
        emitRequest("request.close_session", 27, -11, null);

        // ---- response bodies (FinalRequestProcessor) ----
        emitRecords("response.create", new CreateResponse("/app/seq-0000000001"));
        emitRecords("response.create2", new Create2Response("/app/node", stat()));
        emitRecords("response.exists", new ExistsResponse(stat()));
        emitRecords("response.set_data", new SetDataResponse(stat2()));
        emitRecords("response.set_acl", new SetACLResponse(stat()));
        emitRecords("response.get_data", new GetDataResponse(utf8("hello"), stat()));
        emitRecords("response.get_data_null", new GetDataResponse(null, stat2()));
        emitRecords("response.get_acl", new GetACLResponse(acls(), stat()));
        emitRecords("response.get_children", new GetChildrenResponse(Arrays.asList("a", "b", "zookeeper")));
        emitRecords("response.get_children_empty", new GetChildrenResponse(new ArrayList<>()));
        emitRecords("response.get_children2", new GetChildren2Response(Arrays.asList("x"), stat()));
        emitRecords("response.sync", new SyncResponse("/app"));
        emitRecords("response.reconfig", new GetDataResponse(utf8("server.1=h1:2888:3888;2181\nversion=100000000"), stat2()));
        emitRecords("response.get_ephemerals", new GetEphemeralsResponse(Arrays.asList("/e1", "/app/e2")));
        emitRecords("response.get_all_children_number", new GetAllChildrenNumberResponse(12));
        emitRecords("response.add_watch", new ErrorResponse(0));
        emitRecords("response.whoami", new WhoAmIResponse(Arrays.asList(
                new ClientInfo("ip", "127.0.0.1"), new ClientInfo("digest", "bob"))));
        emitRecords("response.whoami_supplementary", new WhoAmIResponse(Arrays.asList(
                new ClientInfo("digest", "\u00fc" + SMILE))));
        emitRecords("response.sasl", new SetSASLResponse(new byte[] {9, 8, 7}));
        MultiResponse multiResp = new MultiResponse();
        multiResp.add(new OpResult.CreateResult("/m/a"));
        multiResp.add(new OpResult.CreateResult("/m/c", stat2()));
        multiResp.add(new OpResult.DeleteResult());
        multiResp.add(new OpResult.SetDataResult(stat()));
        multiResp.add(new OpResult.CheckResult());
        multiResp.add(new OpResult.ErrorResult(-101));
        emitRecords("response.multi", multiResp);
        MultiResponse failed = new MultiResponse();
        failed.add(new OpResult.ErrorResult(0));
        failed.add(new OpResult.ErrorResult(-103));
        failed.add(new OpResult.ErrorResult(-2));
        emitRecords("response.multi_failed", failed);
        emitRecords("response.multi_empty", new MultiResponse());
        MultiResponse readResp = new MultiResponse();
        readResp.add(new OpResult.GetChildrenResult(Arrays.asList("a", "b")));
        readResp.add(new OpResult.GetDataResult(utf8("v"), stat()));
        readResp.add(new OpResult.GetDataResult(null, stat2()));
        readResp.add(new OpResult.ErrorResult(-101));
        emitRecords("response.multi_read", readResp);

        // ---- whole frames (ServerCnxn.sendResponse / sendNotification) ----
        emitFrame("frame.reply_get_data", oa -> {
            new ReplyHeader(7, 0x0000000100000005L, 0).serialize(oa, "header");
            new GetDataResponse(utf8("hello"), stat()).serialize(oa, "response");
        });
        emitFrame("frame.reply_error", oa -> new ReplyHeader(8, 0x0000000100000005L, -101).serialize(oa, "header"));
        emitFrame("frame.notification", oa -> {
            new ReplyHeader(-1, -1L, 0).serialize(oa, "header");
            new WatcherEvent(4, 3, "/app").serialize(oa, "event");
        });

        // ---- what ZooKeeper's deserializer makes of odd input ----
        // ustring bytes are decoded with new String(bytes, UTF_8): lenient,
        // malformed sequences become U+FFFD.
        emitDecode("string_invalid_byte", "000000022fff", new CreateResponse(), null);
        emitDecode("string_lone_continuations", "0000000380bf41", new CreateResponse(), null);
        emitDecode("string_truncated_sequence", "000000032fe282", new CreateResponse(), null);
        emitDecode("string_truncated_then_ascii", "00000004f09f9841", new CreateResponse(), null);
        emitDecode("string_overlong", "00000002c0af", new CreateResponse(), null);
        emitDecode("string_above_max", "00000004f4908080", new CreateResponse(), null);
        emitDecode("string_surrogates_cesu8", "00000006eda0bdedb880", new CreateResponse(), null);
        emitDecode("string_surrogate_then_ascii", "000000042feda041", new CreateResponse(), null);
        emitDecode("string_surrogate_truncated", "000000032feda0", new CreateResponse(), null);
        emitDecode("string_below_surrogates", "00000003ed9fbf", new CreateResponse(), null);
        emitDecode("string_utf8_supplementary", "00000004f09f9880", new CreateResponse(), null);
        emitDecode("string_negative_length", "fffffffe", new CreateResponse(), null);
        emitDecode("string_length_past_end", "000000052f61", new CreateResponse(), null);
        emitDecode("buffer_negative_length", "fffffffe", new SetSASLResponse(), null);
        emitDecode("buffer_length_past_end", "0000000901", new SetSASLResponse(), null);
        // A vector count is never checked: -1 is null and any other
        // non-positive count is an empty list (BinaryIndex.done: nelems <= 0).
        Normalize<GetChildrenResponse> nullChildren = r -> {
            if (r.getChildren() == null) {
                r.setChildren(new ArrayList<>());
            }
        };
        emitDecode("vector_count_null", "ffffffff", new GetChildrenResponse(), nullChildren);
        emitDecode("vector_count_minus_two", "fffffffe", new GetChildrenResponse(), nullChildren);
        emitDecode("vector_count_min", "80000000", new GetChildrenResponse(), nullChildren);
        emitDecode("vector_count_past_end", "7fffffff00000001", new GetChildrenResponse(), nullChildren);
        emitDecode("vector_acl_count_minus_two",
                "000000022f61ffffffff" + "fffffffe" + "00000000", new CreateRequest(), r -> {
                    if (r.getAcl() == null) {
                        r.setAcl(new ArrayList<>());
                    }
                });
        // readBool is DataInput.readBoolean: any non-zero byte is true.
        emitDecode("bool_nonzero", "000000022f6102", new GetDataRequest(), null);
        emitDecode("truncated_stat", "0000000000000001", new Stat(), null);

        // Every ustring of 1 to 4 bytes over an alphabet of UTF-8 boundary
        // bytes, read by BinaryInputArchive.readString; the code points of
        // each result, as 4-byte big-endian ints followed by 0xffffffff, are
        // hashed with 64-bit FNV-1a.
        long hash = 0xcbf29ce484222325L;
        int count = 0;
        for (int len = 1; len <= 4; len++) {
            int[] digits = new int[len];
            while (true) {
                ByteArrayOutputStream baos = new ByteArrayOutputStream();
                BinaryOutputArchive oa = BinaryOutputArchive.getArchive(baos);
                oa.writeInt(len, "len");
                for (int d : digits) {
                    oa.writeByte((byte) SWEEP_ALPHABET[d], "b");
                }
                String s = BinaryInputArchive.getArchive(new ByteArrayInputStream(baos.toByteArray()))
                        .readString("s");
                int[] cps = s.codePoints().toArray();
                for (int i = 0; i <= cps.length; i++) {
                    int v = i < cps.length ? cps[i] : -1;
                    for (int shift = 24; shift >= 0; shift -= 8) {
                        hash ^= (v >>> shift) & 0xff;
                        hash *= 0x100000001b3L;
                    }
                }
                count++;
                int k = len - 1;
                while (k >= 0 && ++digits[k] == SWEEP_ALPHABET.length) {
                    digits[k--] = 0;
                }
                if (k < 0) {
                    break;
                }
            }
        }
        System.out.println("utf8_sweep.count " + String.format("%08x", count));
        System.out.println("utf8_sweep.fnv1a64 " + String.format("%016x", hash));
    }

    /** Bytes at every boundary of UTF-8's well-formedness table. */
    static final int[] SWEEP_ALPHABET = {
        0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
        0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xff,
    };
}
