//! AWS's published SigV4 test suite (aws-c-auth / aws-sdk-rust `aws-signing-test-suite/v4`,
//! header-signed variants) as a table: canonical request, string to sign and signature must
//! match exactly, `sign` must produce the suite's `Authorization`, and `verify` must accept
//! each signed request and reject a one-byte change. Vectors this API cannot express are left
//! out: the `*-unnormalized` ones whose path normalisation changes the result (tollgate always
//! normalises, as AWS's SDKs do for every service but S3), `get-space-normalized` (it assumes
//! S3's single encoding of an already encoded path; the double-encoding rule is checked by
//! the Lambda vectors instead), presigned (query) variants and `post-sts-header-after` through
//! `sign` (the signer always signs its token; `verify` is checked on it).

use super::*;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20150830T123600Z";
/// 2015-08-30T12:36:00Z.
const SUITE_SECS: u64 = 1_440_938_160;
const SUITE_SCOPE: Scope<'static> = Scope {
    region: "us-east-1",
    service: "service",
};

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    token: Option<&'static str>,
    canonical: &'static str,
    string_to_sign: &'static str,
    signature: &'static str,
}

impl Vector {
    /// The vector's request, with `headers` (its own, through [`fields`]).
    fn request<'a>(&'a self, headers: &'a [(&'a str, &'a [u8])]) -> SigningRequest<'a> {
        SigningRequest {
            method: self.method,
            path: self.path,
            query: self.query,
            headers,
            body: self.body.as_bytes(),
        }
    }
}

const SUITE: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        method: "GET",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path: "/",
        query: "Param2=value2&Param1=value1",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Vector {
        name: "get-vanilla-query-order-encoded",
        method: "GET",
        path: "/",
        query: "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71",
        signature: "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
    },
    Vector {
        name: "get-vanilla-utf8-query",
        method: "GET",
        path: "/",
        query: "\u{1234}=bar",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\neb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
        signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    },
    Vector {
        name: "get-vanilla-query-unreserved",
        method: "GET",
        path: "/",
        query: "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
        signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    },
    Vector {
        name: "get-vanilla-empty-query-key",
        method: "GET",
        path: "/",
        query: "Param1=value1",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
        signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    },
    Vector {
        name: "get-unreserved",
        method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
        signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
    Vector {
        name: "get-utf8",
        method: "GET",
        path: "/\u{1234}",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
        signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    },
    Vector {
        name: "get-space-unnormalized",
        method: "GET",
        path: "/example space/",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
        signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    },
    Vector {
        name: "get-header-key-duplicate",
        method: "GET",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
        body: "",
        token: None,
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\ndc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
        signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    },
    Vector {
        name: "get-header-value-order",
        method: "GET",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")],
        body: "",
        token: None,
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
        signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    },
    Vector {
        name: "get-header-value-trim",
        method: "GET",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        body: "",
        token: None,
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\na726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Vector {
        name: "get-header-value-multiline",
        method: "GET",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value1\r\n  value2\r\n     value3")],
        body: "",
        token: None,
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1 value2 value3\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\ne99419459a677bc11de234014be3c4e72c1ea5b454ceb58b613061f5d7a162e8",
        signature: "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd",
    },
    Vector {
        name: "get-relative-normalized",
        method: "GET",
        path: "/example/..",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-relative-relative-normalized",
        method: "GET",
        path: "/example1/example2/../..",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-slash-dot-slash-normalized",
        method: "GET",
        path: "/./",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-slash-normalized",
        method: "GET",
        path: "//",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-slash-pointless-dot-normalized",
        method: "GET",
        path: "/./example",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/example\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
        signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
    },
    Vector {
        name: "get-slashes-normalized",
        method: "GET",
        path: "//example//",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\ncb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
        signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    },
    Vector {
        name: "get-vanilla-with-session-token",
        method: "GET",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
        signature: "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    },
    Vector {
        name: "post-vanilla",
        method: "POST",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    Vector {
        name: "post-vanilla-query",
        method: "POST",
        path: "/",
        query: "Param1=value1",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
        canonical: "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
        signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    },
    Vector {
        name: "post-header-key-sort",
        method: "POST",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value1")],
        body: "",
        token: None,
        canonical: "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
        signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    },
    Vector {
        name: "post-header-value-case",
        method: "POST",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "VALUE1")],
        body: "",
        token: None,
        canonical: "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nd51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
        signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    },
    Vector {
        name: "post-sts-header-before",
        method: "POST",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: Some("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="),
        canonical: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
        signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    },
    Vector {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path: "/",
        query: "",
        headers: &[("Content-Type", "application/x-www-form-urlencoded"), ("Host", "example.amazonaws.com"), ("Content-Length", "13"), ("X-Amz-Content-Sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")],
        body: "Param1=value1",
        token: None,
        canonical: "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nb1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
        signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    },
    Vector {
        name: "post-x-www-form-urlencoded-parameters",
        method: "POST",
        path: "/",
        query: "",
        headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Host", "example.amazonaws.com"), ("Content-Length", "13"), ("X-Amz-Content-Sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")],
        body: "Param1=value1",
        token: None,
        canonical: "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        string_to_sign: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\na89f1a5b53e37702ee6363ce1da3ce8f54386f3c8f352ae652153c2982a0bc4d",
        signature: "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
    },
];

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn creds(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        session_token: token.map(str::to_owned),
    }
}

fn fields<'a>(headers: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
    headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
}

/// `s` with its last character changed (or `x` when empty): a one-byte change for ASCII.
fn mutate(s: &str) -> String {
    let mut out = s.to_string();
    let last = out.pop();
    out.push(if last == Some('x') { 'y' } else { 'x' });
    out
}

/// `authorization` with the signature's last hex digit changed.
fn flip_signature(authorization: &str) -> String {
    let mut out = authorization.to_string();
    let last = out.pop();
    out.push(if last == Some('0') { '1' } else { '0' });
    out
}

/// The `SignedHeaders` line of a canonical request (the one before the payload hash).
fn signed_line(canonical: &str) -> &str {
    canonical.lines().rev().nth(1).unwrap()
}

/// An incoming request as `verify` sees it, from parts.
struct Incoming {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
    authorization: String,
    amz_date: String,
    token: Option<String>,
}

impl Incoming {
    fn verify(
        &self,
        keys: &[Credentials],
        scope: Scope<'_>,
        now: SystemTime,
    ) -> Result<Verified, SigV4Error> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        let req = SigningRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: self.body.as_bytes(),
        };
        verify(
            &req,
            &self.authorization,
            &self.amz_date,
            self.token.as_deref(),
            |id| keys.iter().find(|c| c.access_key_id == id).cloned(),
            scope,
            now,
            MAX_SKEW,
        )
    }
}

fn suite_incoming(v: &Vector, authorization: String) -> Incoming {
    let mut headers: Vec<(String, String)> = v
        .headers
        .iter()
        .map(|(n, val)| (n.to_string(), val.to_string()))
        .collect();
    headers.push(("X-Amz-Date".into(), AMZ_DATE.into()));
    if let Some(t) = v.token {
        headers.push(("X-Amz-Security-Token".into(), t.into()));
    }
    Incoming {
        method: v.method.into(),
        path: v.path.into(),
        query: v.query.into(),
        headers,
        body: v.body.into(),
        authorization,
        amz_date: AMZ_DATE.into(),
        token: v.token.map(str::to_owned),
    }
}

#[test]
fn aws_suite_canonical_request_string_to_sign_and_signature() {
    for v in SUITE {
        let headers = fields(v.headers);
        let req = v.request(&headers);
        let mut extra: Vec<(&str, &[u8])> = vec![("x-amz-date", AMZ_DATE.as_bytes())];
        if let Some(t) = v.token {
            extra.push(("x-amz-security-token", t.as_bytes()));
        }
        let c = canonical_request(&req, &extra, None).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&c.request),
            v.canonical,
            "{}: canonical request",
            v.name
        );
        assert_eq!(c.signed_headers, signed_line(v.canonical), "{}", v.name);
        let to_sign = string_to_sign(
            AMZ_DATE,
            "20150830/us-east-1/service/aws4_request",
            &c.request,
        );
        assert_eq!(to_sign, v.string_to_sign, "{}: string to sign", v.name);
        let key = signing_key(SECRET, "20150830", "us-east-1", "service");
        let signature = hex(hmac::sign(&key, to_sign.as_bytes()).as_ref());
        assert_eq!(signature, v.signature, "{}: signature", v.name);
    }
}

#[test]
fn aws_suite_sign_gives_the_suites_authorization() {
    for v in SUITE {
        let headers = fields(v.headers);
        let req = v.request(&headers);
        let signed = sign(&req, &creds(v.token), SUITE_SCOPE, at(SUITE_SECS));
        if v.headers.iter().any(|(_, val)| val.contains('\n')) {
            // an obsolete line fold cannot be sent (RFC 9112 §5.2): the signer refuses it
            assert!(matches!(signed, Err(SigV4Error::Sign(_))), "{}", v.name);
            continue;
        }
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={}, Signature={}",
            signed_line(v.canonical),
            v.signature
        );
        let mut expected = vec![
            ("authorization", authorization),
            ("x-amz-date", AMZ_DATE.to_string()),
        ];
        if let Some(t) = v.token {
            expected.push(("x-amz-security-token", t.to_string()));
        }
        assert_eq!(signed.unwrap().fields, expected, "{}", v.name);
    }
}

#[test]
fn aws_suite_verify_accepts_each_and_rejects_a_one_byte_change() {
    let now = at(SUITE_SECS + 300);
    for v in SUITE {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={}, Signature={}",
            signed_line(v.canonical),
            v.signature
        );
        let good = suite_incoming(v, authorization);
        let keys = [creds(v.token)];
        let name = v.name;
        assert_eq!(
            good.verify(&keys, SUITE_SCOPE, now),
            Ok(Verified {
                access_key_id: AKID.into()
            }),
            "{name}"
        );
        let mismatch = |change: &dyn Fn(&mut Incoming), what: &str| {
            let mut bad = suite_incoming(v, good.authorization.clone());
            change(&mut bad);
            assert_eq!(
                bad.verify(&keys, SUITE_SCOPE, now),
                Err(SigV4Error::Mismatch),
                "{name}: {what}"
            );
        };
        mismatch(&|r| r.method = mutate(&r.method), "method");
        mismatch(&|r| r.path = mutate(&r.path), "path");
        mismatch(&|r| r.query = mutate(&r.query), "query");
        // a body under a signed x-amz-content-sha256 fails on its hash, the signature holds
        let mut bad_body = suite_incoming(v, good.authorization.clone());
        bad_body.body = mutate(&bad_body.body);
        let body_error = if v
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"))
        {
            SigV4Error::PayloadHash
        } else {
            SigV4Error::Mismatch
        };
        assert_eq!(
            bad_body.verify(&keys, SUITE_SCOPE, now),
            Err(body_error),
            "{name}: body"
        );
        mismatch(
            &|r| {
                let host = r.headers.iter_mut().find(|(n, _)| n == "Host").unwrap();
                host.1 = mutate(&host.1);
            },
            "host",
        );
        mismatch(
            &|r| r.authorization = flip_signature(&r.authorization),
            "signature",
        );
        // the same day, one second later: the string to sign binds the time
        mismatch(
            &|r| {
                let later = "20150830T123601Z";
                r.amz_date = later.into();
                r.headers
                    .iter_mut()
                    .filter(|(n, _)| n == "X-Amz-Date")
                    .for_each(|h| h.1 = later.into());
            },
            "x-amz-date",
        );
        // every other signed field, one byte changed
        for (i, (n, _)) in v.headers.iter().enumerate() {
            if n.eq_ignore_ascii_case("host") {
                continue;
            }
            // a payload hash stays a hex digest (another one): only the signature breaks
            let hash = n.eq_ignore_ascii_case("x-amz-content-sha256");
            let change = |v: &str| {
                if hash {
                    let mut h = v.to_string();
                    let last = h.pop();
                    h.push(if last == Some('0') { '1' } else { '0' });
                    h
                } else {
                    mutate(v)
                }
            };
            mismatch(
                &|r| r.headers[i].1 = change(&r.headers[i].1),
                "a signed field",
            );
        }
        for (skew, what) in [(15 * 60 + 1, "late"), (0, "early")] {
            let when = if what == "late" {
                at(SUITE_SECS + skew)
            } else {
                at(SUITE_SECS - 15 * 60 - 1)
            };
            assert_eq!(
                good.verify(&keys, SUITE_SCOPE, when),
                Err(SigV4Error::Expired),
                "{name}: {what}"
            );
        }
        for at_edge in [SUITE_SECS + 15 * 60, SUITE_SECS - 15 * 60] {
            assert!(
                good.verify(&keys, SUITE_SCOPE, at(at_edge)).is_ok(),
                "{name}: skew edge"
            );
        }
        for scope in [
            Scope {
                region: "us-east-2",
                service: "service",
            },
            Scope {
                region: "us-east-1",
                service: "lambda",
            },
        ] {
            assert_eq!(
                good.verify(&keys, scope, now),
                Err(SigV4Error::WrongScope),
                "{name}"
            );
        }
        let other = Credentials {
            access_key_id: "AKIDOTHER".into(),
            ..creds(v.token)
        };
        assert_eq!(
            good.verify(&[other], SUITE_SCOPE, now),
            Err(SigV4Error::UnknownKey),
            "{name}"
        );
        let wrong_secret = Credentials {
            secret_access_key: mutate(SECRET),
            ..creds(v.token)
        };
        assert_eq!(
            good.verify(&[wrong_secret], SUITE_SCOPE, now),
            Err(SigV4Error::Mismatch),
            "{name}: secret"
        );
    }
}

#[test]
fn a_session_token_added_after_signing_verifies_only_with_its_key() {
    // post-sts-header-after: the token travels but is not among SignedHeaders
    let token = SUITE
        .iter()
        .find(|v| v.name == "post-sts-header-before")
        .and_then(|v| v.token)
        .unwrap();
    let incoming = |token: Option<&str>| {
        Incoming {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![
            ("Host".into(), "example.amazonaws.com".into()),
            ("X-Amz-Date".into(), AMZ_DATE.into()),
        ]
        .into_iter()
        .chain(token.map(|t| ("X-Amz-Security-Token".to_string(), t.to_string())))
        .collect(),
        body: String::new(),
        authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b".into(),
        amz_date: AMZ_DATE.into(),
        token: token.map(str::to_owned),
    }
    };
    let now = at(SUITE_SECS);
    assert!(incoming(Some(token))
        .verify(&[creds(Some(token))], SUITE_SCOPE, now)
        .is_ok());
    let other = mutate(token);
    for (req_token, key_token) in [
        (Some(other.as_str()), Some(token)),
        (None, Some(token)),
        (Some(token), None),
    ] {
        assert_eq!(
            incoming(req_token).verify(&[creds(key_token)], SUITE_SCOPE, now),
            Err(SigV4Error::UnknownKey),
            "request token {req_token:?}, key token {key_token:?}"
        );
    }
    // without any token it is post-vanilla, which verifies against a key without one
    assert!(incoming(None)
        .verify(&[creds(None)], SUITE_SCOPE, now)
        .is_ok());
}

/// The suite's Lambda vector (`double-url-encode`): the ARN's `%3A` is encoded again.
#[test]
fn lambda_invoke_vector_double_encodes_the_path() {
    let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations";
    let headers: [(&str, &[u8]); 1] = [("Host", b"lambda.us-east-2.amazonaws.com")];
    let req = SigningRequest {
        method: "POST",
        path,
        query: "",
        headers: &headers,
        body: b"",
    };
    let amz_date = "20210511T154045Z";
    let c = canonical_request(&req, &[("x-amz-date", amz_date.as_bytes())], None).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&c.request),
        "POST\n/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-west-2%253A892717189312%253Afunction%253Amy-rusty-fun/invocations\n\nhost:lambda.us-east-2.amazonaws.com\nx-amz-date:20210511T154045Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        string_to_sign(amz_date, "20210511/us-east-2/lambda/aws4_request", &c.request),
        "AWS4-HMAC-SHA256\n20210511T154045Z\n20210511/us-east-2/lambda/aws4_request\n684dbb3c92a8b6b1e452e23e523c1ea941c713a4c13500bb9f3bdad1e19afaf7"
    );
    let scope = Scope {
        region: "us-east-2",
        service: "lambda",
    };
    let time = parse_amz_date(amz_date).unwrap();
    let signed = sign(&req, &creds(None), scope, at(time)).unwrap();
    let authorization = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804";
    assert_eq!(
        signed.fields,
        vec![
            ("authorization", authorization.to_string()),
            ("x-amz-date", amz_date.to_string())
        ]
    );
    // the suite's double-encode-path: `@` encoded, `%3D` encoded again
    let mut out = Vec::new();
    canonical_path("/test/@connections/JBDvjfGEIAMCERw%3D", &mut out);
    assert_eq!(out, b"/test/%40connections/JBDvjfGEIAMCERw%253D");
}

/// What the Lambda integration sends: an Invoke call with a JSON body and a session token,
/// signed, then verified as a receiving Invoke endpoint would.
#[test]
fn lambda_invoke_sign_then_verify_round_trip() {
    let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Aorders/invocations";
    let body = r#"{"version":"2.0","routeKey":"POST /orders","body":"{\"qty\":2}"}"#;
    let host = "lambda.eu-west-1.amazonaws.com";
    let scope = Scope {
        region: "eu-west-1",
        service: "lambda",
    };
    let key = Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: Some("IQoJb3JpZ2luX2VjEXAMPLE+token/==".into()),
    };
    let signed_fields: [(&str, &[u8]); 3] = [
        ("host", host.as_bytes()),
        ("content-type", b"application/json"),
        ("x-amz-invocation-type", b"RequestResponse"),
    ];
    let req = SigningRequest {
        method: "POST",
        path,
        query: "",
        headers: &signed_fields,
        body: body.as_bytes(),
    };
    let now = SystemTime::now();
    let signed = sign(&req, &key, scope, now).unwrap();
    let get = |name: &str| {
        signed
            .fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let amz_date = get("x-amz-date");
    let c = canonical_request(
        &req,
        &[
            ("x-amz-date", amz_date.as_bytes()),
            (
                "x-amz-security-token",
                key.session_token.as_deref().unwrap().as_bytes(),
            ),
        ],
        None,
    )
    .unwrap();
    let text = String::from_utf8(c.request).unwrap();
    // AWS: "URI-encode each path segment twice" for every service but S3: the wire form's
    // `%3A` (`:` encoded once) becomes `%253A`
    assert_eq!(
        text.lines().nth(1),
        Some("/2015-03-31/functions/arn%253Aaws%253Alambda%253Aeu-west-1%253A123456789012%253Afunction%253Aorders/invocations")
    );
    assert_eq!(
        c.signed_headers,
        "content-type;host;x-amz-date;x-amz-invocation-type;x-amz-security-token"
    );
    let authorization = get("authorization");
    assert!(authorization.starts_with(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/{}/eu-west-1/lambda/aws4_request, SignedHeaders={}, Signature=",
        &amz_date[..8],
        c.signed_headers
    )));
    let incoming = Incoming {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers: vec![
            ("Host".into(), host.into()),
            ("Content-Type".into(), "application/json".into()),
            ("Content-Length".into(), body.len().to_string()),
            ("X-Amz-Invocation-Type".into(), "RequestResponse".into()),
            ("X-Amz-Date".into(), amz_date.clone()),
            ("X-Amz-Security-Token".into(), get("x-amz-security-token")),
            ("Authorization".into(), authorization.clone()),
        ],
        body: body.into(),
        authorization,
        amz_date,
        token: Some(get("x-amz-security-token")),
    };
    let keys = [key.clone()];
    assert_eq!(
        incoming.verify(&keys, scope, now),
        Ok(Verified {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into()
        })
    );
    // a client that sent the ARN's colons unencoded signed another path
    let mut raw = Incoming {
        path: path.replace("%3A", ":"),
        ..incoming_clone(&incoming)
    };
    assert_eq!(raw.verify(&keys, scope, now), Err(SigV4Error::Mismatch));
    raw = Incoming {
        body: body.replace('2', "3"),
        ..incoming_clone(&incoming)
    };
    assert_eq!(raw.verify(&keys, scope, now), Err(SigV4Error::Mismatch));
    // a field outside SignedHeaders may change (content-length is not signed here)
    let mut unsigned = incoming_clone(&incoming);
    unsigned.headers[2].1 = "999".into();
    assert!(unsigned.verify(&keys, scope, now).is_ok());
}

fn incoming_clone(i: &Incoming) -> Incoming {
    Incoming {
        method: i.method.clone(),
        path: i.path.clone(),
        query: i.query.clone(),
        headers: i.headers.clone(),
        body: i.body.clone(),
        authorization: i.authorization.clone(),
        amz_date: i.amz_date.clone(),
        token: i.token.clone(),
    }
}

#[test]
fn authorization_is_parsed_strictly() {
    let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let good = format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}");
    let parsed = parse_authorization(&good).unwrap();
    assert_eq!(
        (
            parsed.access_key_id,
            parsed.date,
            parsed.region,
            parsed.service,
            parsed.signed_headers
        ),
        (
            "AKIDEXAMPLE",
            "20150830",
            "us-east-1",
            "service",
            "host;x-amz-date"
        )
    );
    assert_eq!(hex(&parsed.signature), sig);
    // no space after the commas, and another order: same fields
    let compact = format!("AWS4-HMAC-SHA256 Signature={sig},Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,SignedHeaders=host;x-amz-date");
    assert_eq!(parse_authorization(&compact), Ok(parsed));
    let cred = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
    let bad = [
        String::new(),
        format!("AWS4-HMAC-SHA512 {cred}, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256{cred}, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature={sig}, Extra=1"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature={sig},"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083O/us-east-1/service/aws4_request, SignedHeaders=host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=x-amz-date;host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;host, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=Host;x-amz-date, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;x-amz-date, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=x-amz-date, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature={}", &sig[1..]),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature={}", sig.to_uppercase()),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature={}g", &sig[1..]),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature={sig}0"),
    ];
    for value in bad {
        assert!(
            matches!(parse_authorization(&value), Err(SigV4Error::Malformed(_))),
            "accepted {value:?}"
        );
    }
}

#[test]
fn verify_refuses_malformed_dates_and_unsigned_essentials() {
    let v = &SUITE[0];
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
        v.signature
    );
    let keys = [creds(None)];
    let now = at(SUITE_SECS);
    for date in [
        "20150830T123600",
        "20150830T123600z",
        "20150830 123600Z",
        "2015083OT123600Z",
        "20150230T123600Z",
        "20151330T123600Z",
        "20150830T243600Z",
        "20150830T126000Z",
        "",
    ] {
        let mut r = suite_incoming(v, authorization.clone());
        r.amz_date = date.into();
        assert!(
            matches!(
                r.verify(&keys, SUITE_SCOPE, now),
                Err(SigV4Error::Malformed(_))
            ),
            "{date:?}"
        );
    }
    // the credential's day is not the request's
    let r = suite_incoming(v, authorization.replace("/20150830/", "/20150831/"));
    assert!(matches!(
        r.verify(&keys, SUITE_SCOPE, now),
        Err(SigV4Error::Malformed(_))
    ));
    // a signed field the request lacks
    let r = suite_incoming(
        v,
        authorization.replace("host;x-amz-date", "host;my-header1;x-amz-date"),
    );
    assert!(matches!(
        r.verify(&keys, SUITE_SCOPE, now),
        Err(SigV4Error::Malformed(_))
    ));
    // the date not signed
    let r = suite_incoming(v, authorization.replace("host;x-amz-date", "host"));
    assert!(matches!(
        r.verify(&keys, SUITE_SCOPE, now),
        Err(SigV4Error::Malformed(_))
    ));
}

#[test]
fn sign_refuses_what_cannot_be_signed_or_sent() {
    let key = creds(None);
    let at_suite = at(SUITE_SECS);
    let try_sign = |headers: &[(&str, &[u8])], scope: Scope<'_>, time: SystemTime| {
        let req = SigningRequest {
            method: "POST",
            path: "/",
            query: "",
            headers,
            body: b"",
        };
        sign(&req, &key, scope, time)
    };
    let host: (&str, &[u8]) = ("host", b"example.amazonaws.com");
    type Case<'a> = (Vec<(&'a str, &'a [u8])>, Scope<'a>, SystemTime);
    let cases: Vec<Case<'_>> = vec![
        (vec![], SUITE_SCOPE, at_suite),
        (vec![("content-type", b"text/plain")], SUITE_SCOPE, at_suite),
        (vec![host, ("bad name", b"v")], SUITE_SCOPE, at_suite),
        (vec![host, ("", b"v")], SUITE_SCOPE, at_suite),
        (vec![host, ("x-a", b"a\r\nb: c")], SUITE_SCOPE, at_suite),
        (vec![host, ("x-a", b"a\0")], SUITE_SCOPE, at_suite),
        (vec![host, ("x-a", b"a\x7fb")], SUITE_SCOPE, at_suite),
        (
            vec![host, ("X-Amz-Date", b"20150830T123600Z")],
            SUITE_SCOPE,
            at_suite,
        ),
        (vec![host, ("Authorization", b"x")], SUITE_SCOPE, at_suite),
        (
            vec![host, ("x-amz-security-token", b"x")],
            SUITE_SCOPE,
            at_suite,
        ),
        (
            vec![host],
            Scope {
                region: "",
                service: "lambda",
            },
            at_suite,
        ),
        (
            vec![host],
            Scope {
                region: "eu-west-1",
                service: "lam/bda",
            },
            at_suite,
        ),
        (vec![host], SUITE_SCOPE, UNIX_EPOCH - Duration::from_secs(1)),
    ];
    for (headers, scope, time) in cases {
        assert!(
            matches!(try_sign(&headers, scope, time), Err(SigV4Error::Sign(_))),
            "signed {headers:?} {scope:?}"
        );
    }
    let odd_key = Credentials {
        access_key_id: "AKID EXAMPLE".into(),
        ..creds(None)
    };
    let req = SigningRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &[host],
        body: b"",
    };
    assert!(matches!(
        sign(&req, &odd_key, SUITE_SCOPE, at_suite),
        Err(SigV4Error::Sign(_))
    ));
    let bad_method = SigningRequest {
        method: "GE T",
        ..req
    };
    assert!(matches!(
        sign(&bad_method, &key, SUITE_SCOPE, at_suite),
        Err(SigV4Error::Sign(_))
    ));
}

/// What a canonical-form writer (`canonical_query`, `canonical_path`) makes of `s`.
fn canonical(write: fn(&str, &mut Vec<u8>), s: &str) -> String {
    let mut out = Vec::new();
    write(s, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn query_and_path_canonical_forms() {
    let query = |q: &str| canonical(|q, out| canonical_query(q, None, Plus::Literal, out), q);
    // lower-case hex re-encoded upper-case, `+` is a plus (RFC 3986, not a form), a name
    // without `=` gets an empty value, a stray `%` is data, empty pairs vanish
    assert_eq!(query("b=%e1%88%b4&a"), "a=&b=%E1%88%B4");
    assert_eq!(query("a=x+y&a=x%20y"), "a=x%20y&a=x%2By");
    assert_eq!(query("k=%zz&k=%4"), "k=%254&k=%25zz");
    assert_eq!(query("&&a=1&&"), "a=1");
    assert_eq!(query("a=b=c"), "a=b%3Dc");
    let path = |p: &str| canonical(canonical_path, p);
    assert_eq!(path(""), "/");
    assert_eq!(path("/a/b/.."), "/a/");
    assert_eq!(path("/a/b/."), "/a/b/");
    assert_eq!(path("/../a"), "/a");
    assert_eq!(path("/a%2Fb"), "/a%252Fb");
    assert_eq!(path("/example%20space/"), "/example%2520space/");
}

#[test]
fn amz_dates_format_and_parse() {
    assert_eq!(format_amz_date(SUITE_SECS), AMZ_DATE);
    assert_eq!(parse_amz_date(AMZ_DATE), Some(SUITE_SECS));
    assert_eq!(format_amz_date(0), "19700101T000000Z");
    assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
    assert_eq!(parse_amz_date("19000229T000000Z"), None);
    assert_eq!(parse_amz_date("19691231T235959Z"), None);
    for days in (-800_000..800_000).step_by(997) {
        let (y, m, d) = crate::fmt::civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    for secs in (0..4_102_444_800u64).step_by(86_399 * 37) {
        assert_eq!(parse_amz_date(&format_amz_date(secs)), Some(secs));
    }
}

#[test]
fn content_sha256_is_the_payload_hash_when_sent() {
    let creds = Credentials {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        session_token: None,
    };
    let now = at(SUITE_SECS);
    let run = |sha: &str, signed_body: &[u8], sent_body: &[u8]| {
        let headers: [(&str, &[u8]); 2] = [
            ("host", b"example.amazonaws.com"),
            ("x-amz-content-sha256", sha.as_bytes()),
        ];
        let mut req = SigningRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: signed_body,
        };
        let signed = sign(&req, &creds, SUITE_SCOPE, now).unwrap();
        let value = |n: &str| {
            signed
                .fields
                .iter()
                .find(|(k, _)| *k == n)
                .unwrap()
                .1
                .clone()
        };
        let (auth, date) = (value("authorization"), value("x-amz-date"));
        let all: Vec<(&str, &[u8])> = headers
            .iter()
            .copied()
            .chain([("x-amz-date", date.as_bytes())])
            .collect();
        req.headers = &all;
        req.body = sent_body;
        let keys = |id: &str| (id == AKID).then(|| creds.clone());
        verify(&req, &auth, &date, None, keys, SUITE_SCOPE, now, MAX_SKEW)
    };
    // unsigned: any body verifies
    assert!(run("UNSIGNED-PAYLOAD", b"abc", b"something else").is_ok());
    // a digest: the body must hash to it
    let digest = hex(digest::digest(&digest::SHA256, b"abc").as_ref());
    assert!(run(&digest, b"abc", b"abc").is_ok());
    assert_eq!(run(&digest, b"abc", b"abd"), Err(SigV4Error::PayloadHash));
    // anything else is malformed, signing or verifying
    let creds2 = creds.clone();
    let headers: [(&str, &[u8]); 2] = [("host", b"h"), ("x-amz-content-sha256", b"ABC")];
    let req = SigningRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    assert!(sign(&req, &creds2, SUITE_SCOPE, now).is_err());
}
