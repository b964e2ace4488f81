//! The field types of the protocol (`FieldType.json`, 44 values in spec 3.0.6).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Textarea,
    Email,
    Url,
    Phone,
    Password,
    Markdown,
    Html,
    Richtext,
    Number,
    Currency,
    Percent,
    Date,
    Datetime,
    Time,
    Boolean,
    Toggle,
    Select,
    Multiselect,
    Radio,
    Checkboxes,
    Lookup,
    MasterDetail,
    Tree,
    Image,
    File,
    Avatar,
    Video,
    Audio,
    Formula,
    Summary,
    Autonumber,
    Location,
    Address,
    Code,
    Json,
    Color,
    Rating,
    Slider,
    Signature,
    Qrcode,
    Progress,
    Tags,
    Vector,
}

impl FieldType {
    /// Every type, in the order of the spec's enum.
    pub const ALL: [FieldType; 44] = [
        FieldType::Text,
        FieldType::Textarea,
        FieldType::Email,
        FieldType::Url,
        FieldType::Phone,
        FieldType::Password,
        FieldType::Markdown,
        FieldType::Html,
        FieldType::Richtext,
        FieldType::Number,
        FieldType::Currency,
        FieldType::Percent,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Time,
        FieldType::Boolean,
        FieldType::Toggle,
        FieldType::Select,
        FieldType::Multiselect,
        FieldType::Radio,
        FieldType::Checkboxes,
        FieldType::Lookup,
        FieldType::MasterDetail,
        FieldType::Tree,
        FieldType::Image,
        FieldType::File,
        FieldType::Avatar,
        FieldType::Video,
        FieldType::Audio,
        FieldType::Formula,
        FieldType::Summary,
        FieldType::Autonumber,
        FieldType::Location,
        FieldType::Address,
        FieldType::Code,
        FieldType::Json,
        FieldType::Color,
        FieldType::Rating,
        FieldType::Slider,
        FieldType::Signature,
        FieldType::Qrcode,
        FieldType::Progress,
        FieldType::Tags,
        FieldType::Vector,
    ];

    pub fn as_str(self) -> &'static str {
        use FieldType::*;
        match self {
            Text => "text",
            Textarea => "textarea",
            Email => "email",
            Url => "url",
            Phone => "phone",
            Password => "password",
            Markdown => "markdown",
            Html => "html",
            Richtext => "richtext",
            Number => "number",
            Currency => "currency",
            Percent => "percent",
            Date => "date",
            Datetime => "datetime",
            Time => "time",
            Boolean => "boolean",
            Toggle => "toggle",
            Select => "select",
            Multiselect => "multiselect",
            Radio => "radio",
            Checkboxes => "checkboxes",
            Lookup => "lookup",
            MasterDetail => "master_detail",
            Tree => "tree",
            Image => "image",
            File => "file",
            Avatar => "avatar",
            Video => "video",
            Audio => "audio",
            Formula => "formula",
            Summary => "summary",
            Autonumber => "autonumber",
            Location => "location",
            Address => "address",
            Code => "code",
            Json => "json",
            Color => "color",
            Rating => "rating",
            Slider => "slider",
            Signature => "signature",
            Qrcode => "qrcode",
            Progress => "progress",
            Tags => "tags",
            Vector => "vector",
        }
    }

    /// Computed or system-generated: never accepted on write.
    pub fn is_read_only(self) -> bool {
        matches!(self, FieldType::Formula | FieldType::Summary | FieldType::Autonumber)
    }

    /// Holds a reference to another record.
    pub fn is_reference(self) -> bool {
        matches!(self, FieldType::Lookup | FieldType::MasterDetail | FieldType::Tree)
    }

    /// Takes its value from `options`.
    pub fn has_options(self) -> bool {
        matches!(self, FieldType::Select | FieldType::Multiselect | FieldType::Radio | FieldType::Checkboxes)
    }

    /// A number on the wire.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Number | FieldType::Currency | FieldType::Percent | FieldType::Rating | FieldType::Slider | FieldType::Progress | FieldType::Summary
        )
    }

    /// Free text on the wire (length rules apply).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::Textarea
                | FieldType::Email
                | FieldType::Url
                | FieldType::Phone
                | FieldType::Password
                | FieldType::Markdown
                | FieldType::Html
                | FieldType::Richtext
                | FieldType::Code
                | FieldType::Signature
                | FieldType::Qrcode
                | FieldType::Color
        )
    }
}
