"""Word lists for the one-time-code extractor, by role and language, and
``MessageIndex``, which finds where they occur in one message.

Each list holds lower-case patterns for Python's ``re``, matched against the
lower-cased message. Entries for spaced scripts match whole words (a trailing
``\\w*`` allows inflected forms); the ``*_CJK`` lists, for scripts written
without spaces (Chinese, Japanese, Thai) or with prefixes and particles glued
to words (Hebrew, Arabic, Korean), match anywhere.

Roles:

- ``CODE``: nouns naming a one-time secret ("code", "OTP", "PIN", "password"
  and their equivalents). A candidate needs one of these nearby.
- ``CODE_SUFFIX``: endings of compound words that name one ("Sicherheitscode",
  "verifieringskod", "kertakäyttökoodi").
- ``NOT_CODE_PREFIX``: compounds built on those endings that name something
  else ("postcode", "Gutscheincode", "barcode", "encode").
- ``QUALIFIER``: words that say what the secret is for ("verification",
  "login", "one-time"); they strengthen a nearby code word, never replace it.
- ``NOT_CODE_QUALIFIER``: words that, just before a code word, make it a code
  of another kind ("tracking code", "promo code", "postal code", "gift card
  code"); the code word then counts for nothing.
- ``IDENTIFIER``: words that, just before a number, say what else it is
  (order, invoice, account, card, phone number, amount, reference...).
- ``PROMOTION``: marketing words; a code in an offer is a discount code.
- ``MEETING`` and ``BOOKING``: meetings and bookings, whose PINs and
  passcodes are not sign-in codes.
- ``ENTRY_VERB``: "enter", "use", "type"... right before a number.
- ``CONNECTOR``: little words between a code word and the code ("is", "ist",
  "est", "lautet", "your", "是", "は") that do not weaken the link.
- ``CURRENCY`` and ``UNIT``: what marks a number as an amount or a quantity.

Matching lower-cased text is several times faster than ``re.IGNORECASE``, and
one pass over the words (``WORD_RE``, grouped by first letter) serves every role.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cached_property

CODE: tuple[str, ...] = (
    # English and international
    r"codes?", r"passcodes?", r"otps?", r"pins?", r"pincodes?", r"passwords?", r"passwd",
    r"2fa", r"mfa", r"tan", r"mtan", r"smstan",
    # German, Dutch, Scandinavian, Finnish (single words; compounds via CODE_SUFFIX)
    r"passwort\w*", r"kennwort\w*", r"wachtwoord\w*", r"lösenord\w*", r"losenord\w*",
    r"passord\w*", r"kodeord\w*", r"salasana\w*", r"koodi\w*", r"kood\w*",
    # Romance
    r"c[oó]digos?", r"cdigo", r"codi", r"codice", r"codici", r"codul(?:ui)?", r"cod",
    r"mot(?:s)? de passe", r"clave", r"contrase[ñn]a", r"senhas?", r"parol[aă]?",
    # Slavic, Baltic, Hungarian, Turkic, Albanian, Georgian (transliterated), Indonesian
    r"k[oó]d\w*", r"kôd\w*", r"has[łl][oae]\w*", r"hesl[oae]\w*", r"lozink\w*", r"gesl[oa]",
    r"jelsz[oó]\w*", r"[şs]ifre\w*", r"sandi", r"kodas", r"kods",
    r"код\w*", r"парол\w*", r"пин", r"пін",
    # Greek
    r"κωδικ\w*", r"συνθηματικ\w*",
    # Vietnamese ("mã" alone is too common a syllable, so only in phrases)
    r"m[aã] (?:x[aá]c|otp|k[ií]ch|b[aả]o|đăng|dang|giao|pin|s[oố])\w*",
    r"m[aậ]t kh[aẩ]u",
)  # fmt: skip

CODE_SUFFIX: tuple[str, ...] = (
    r"code[sn]?", r"kode[nr]?", r"kod", r"kód", r"koodi\w*", r"kood\w*",
    r"passwort", r"kennwort", r"wachtwoord", r"lösenord", r"passord", r"salasana\w*",
)  # fmt: skip

NOT_CODE_PREFIX: tuple[str, ...] = (
    "en", "de", "uni", "geo", "op", "bar", "zip", "post", "postal", "qr", "promo", "rabatt",
    "rabat", "gutschein", "aktions", "kampanje", "kampagne", "gave", "presente", "gift",
    "discount", "coupon", "voucher", "source", "quell", "fehler", "error", "status", "short",
    "area", "country", "länder", "vorwahl", "tracking", "sendungs", "referral", "invite",
    "einladungs", "html", "tax", "steuer", "swift", "sort", "bank", "bankleit", "iban",
    "produkt", "product", "artikel", "farb", "color", "colour", "zeichen", "morse", "dress",
    "kunden", "pick", "pickup", "abhol", "rabattkod", "dörr", "tür", "door", "gate",
)  # fmt: skip

QUALIFIER: tuple[str, ...] = (
    # English
    r"verif\w*", r"confirm\w*", r"auth\w*", r"security", r"secure", r"login", r"log[- ]?in",
    r"logon", r"sign[- ]?in", r"sign[- ]?up", r"one[- ]?time", r"single[- ]use", r"temporary",
    r"two[- ]factor", r"2[- ]step", r"two[- ]step", r"multi[- ]factor", r"access",
    r"activat\w*", r"registration", r"reset", r"recover\w*", r"validat\w*", r"identity",
    r"approv\w*",
    # German, Dutch, Scandinavian, Finnish
    r"bestätig\w*", r"best[aä]tig\w*", r"sicherheit\w*", r"anmeld\w*", r"einmal\w*",
    r"verifizier\w*", r"freigabe\w*", r"bevestig\w*", r"inlog\w*", r"beveilig\w*",
    r"eenmalig\w*", r"bekr[aä]ft\w*", r"bekreft\w*", r"verifier\w*", r"engångs\w*",
    r"engangs\w*", r"vahvist\w*", r"kertakäyttö\w*", r"tunnist\w*",
    # Romance
    r"vérif\w*", r"sécurité", r"connexion", r"réinitialis\w*", r"restablec\w*", r"reimpost\w*",
    r"redefini\w*", r"zurücksetz\w*", r"usage unique", r"validation",
    r"verificaci\w*", r"verificac\w*", r"verifica\w*", r"confirmaci\w*", r"seguridad",
    r"acceso", r"un solo uso", r"activaci\w*", r"sicurezza", r"accesso", r"conferma\w*",
    r"segurança", r"seguranca", r"acesso", r"confirmação", r"confirmacao", r"ativação",
    r"autentica\w*", r"autoriza\w*", r"autoriza\w*", r"firma", r"securitate", r"confirmare",
    # Slavic, Baltic, Hungarian, Turkic, Indonesian, Tagalog
    r"weryfik\w*", r"potwierdz\w*", r"jednorazow\w*", r"logowan\w*", r"autoryz\w*",
    r"ověř\w*", r"overov\w*", r"potvr\w*", r"potrdi\w*", r"potrditv\w*", r"prijav\w*",
    r"verifik\w*", r"jednokratn\w*", r"enkratn\w*", r"parbaud\w*", r"pārbaud\w*",
    r"patvirtin\w*", r"ellenőr\w*", r"ellenor\w*", r"megerősít\w*",
    r"do[gğ]rulama\w*", r"onay\w*", r"tek kullan\w*", r"tasdiq\w*", r"tasdiqlash\w*",
    r"pamberipikasyon\w*", r"prihlasovac\w*", r"přihlašovac\w*",
    r"подтвержд\w*", r"підтвердж\w*", r"проверочн\w*", r"одноразов\w*", r"сеансов\w*",
    r"вход\w*", r"авторизац\w*", r"верификац\w*", r"активац\w*", r"безопасн\w*",
    r"επιβεβαίωσ\w*", r"επαλήθευσ\w*", r"ασφαλείας", r"σύνδεσ\w*",
    r"x[aá]c (?:minh|th[uự]c|nh[aậ]n)", r"k[ií]ch ho[aạ]t",
)  # fmt: skip

NOT_CODE_QUALIFIER: tuple[str, ...] = (
    r"tracking", r"track", r"old", r"previous", r"expired", r"promo\w*", r"discount",
    r"coupon", r"voucher", r"gift", r"postal", r"post", r"zip", r"booking", r"reservation",
    r"reference", r"ref", r"area", r"country", r"qr", r"bar", r"error", r"source", r"referral",
    r"invite", r"invitation", r"wi-?fi", r"wlan", r"wireless", r"network", r"product",
    r"swift", r"sort", r"tax", r"pickup", r"pick-up", r"sale", r"offer", r"door", r"gate",
    r"entry", r"parking", r"locker", r"dress", r"color", r"colour", r"claim", r"redeem",
    r"redemption", r"reward", r"prize", r"bonus", r"lottery",
    r"réduction", r"promotionnel", r"postal", r"descuento", r"cup[oó]n", r"regalo",
    r"sconto", r"postale", r"desconto", r"cupom", r"presente", r"korting", r"kortings",
    r"rabatt", r"rabat", r"kupon", r"zniżk\w*", r"pocztow\w*", r"скидк\w*", r"промо\w*",
    r"почтов\w*", r"indirim\w*", r"posta",
)  # fmt: skip

IDENTIFIER: tuple[str, ...] = (
    # English
    r"orders?", r"ord", r"ref", r"refs", r"reference", r"invoice", r"inv", r"account", r"acct",
    r"a/c", r"card", r"ending", r"ends", r"booking", r"reservation", r"ticket", r"case",
    r"tracking", r"track", r"shipment", r"parcel", r"package", r"consignment", r"awb",
    r"customer", r"member", r"membership", r"id", r"no", r"nr", r"num", r"number", r"tel",
    r"phone", r"telephone", r"mobile", r"cell", r"call", r"fax", r"text", r"reply", r"sms to",
    r"transaction", r"txn", r"trx", r"serial", r"model", r"version", r"policy",
    r"claim", r"loan", r"contract", r"iban", r"routing", r"receipt", r"bill", r"amount",
    r"total", r"price", r"balance", r"sum", r"room", r"flight", r"seat", r"suite", r"apt",
    r"street", r"st", r"ave", r"road", r"box", r"po", r"postcode", r"zip", r"extension",
    r"ext", r"employee", r"student", r"patient", r"passport", r"licen[cs]e", r"plate",
    r"isbn", r"sku", r"item", r"article", r"product", r"batch", r"lot", r"qty", r"quantity",
    r"hotline", r"helpline", r"contact", r"dial", r"to", r"at", r"payment", r"paid", r"spent",
    r"charged", r"limit", r"year", r"since", r"mtcn", r"meeting", r"webinar",
    # German, Dutch, Scandinavian
    r"bestell\w*", r"auftrag\w*", r"rechnung\w*", r"kund\w*", r"konto\w*", r"karte",
    r"\w*nummer", r"\w*nr", r"sendung\w*", r"buchung\w*", r"referenz", r"betrag", r"summe",
    r"vorgang\w*", r"aktenzeichen", r"telefon\w*", r"anruf\w*", r"rufen", r"factuur",
    r"rekening\w*", r"kaart", r"boeking\w*", r"bedrag", r"bel", r"zending", r"klant\w*",
    r"bestelling\w*", r"referentie", r"ordre", r"faktura", r"beløp", r"belopp",
    # Romance
    r"commande", r"facture", r"compte", r"carte", r"num[ée]ro", r"réf", r"référence",
    r"colis", r"réservation", r"montant", r"t[ée]l[ée]phone", r"tél", r"appel\w*",
    r"dossier", r"client", r"contrat", r"suivi", r"billet", r"pedido", r"factura",
    r"cuenta", r"tarjeta", r"n[uú]mero", r"referencia", r"reserva", r"importe", r"monto",
    r"tel[eé]fono", r"llam\w*", r"env[ií]o", r"seguimiento", r"cliente", r"expediente",
    r"ordine", r"fattura", r"conto", r"carta", r"riferimento", r"prenotazione", r"importo",
    r"chiama\w*", r"spedizione", r"pratica", r"fatura", r"conta", r"cart[aã]o",
    r"refer[eê]ncia", r"valor", r"telefone", r"ligue", r"encomenda", r"rastreio",
    r"protocolo", r"suma", r"contul", r"comanda", r"factura",
    # Slavic, Baltic, Hungarian, Turkic, Indonesian, Vietnamese
    r"zam[oó]wieni\w*", r"rachun\w*", r"kwot\w*", r"przesy[łl]k\w*", r"klient\w*", r"numer\w*",
    r"karta", r"karty", r"kart[eěyi]", r"objedn[aá]vk\w*", r"[uú][cč]et\w*", r"[cč][ií]slo",
    r"[cč][aá]stk\w*", r"z[aá]sielk\w*", r"naro[cč]il\w*", r"ra[cč]un\w*", r"kartic\w*",
    r"[sš]tevilk\w*", r"znesek", r"broj\w*", r"po[sš]iljk\w*", r"rendel[eé]s\w*", r"sz[aá]ml\w*",
    r"sipari[sş]\w*", r"hesab\w*", r"hesap\w*", r"kart\w*", r"numara\w*", r"tutar\w*",
    r"kargo", r"takip", r"m[uü][sş]teri\w*", r"referans", r"pesanan", r"faktur", r"rekening",
    r"kartu", r"nomor", r"jumlah", r"telepon", r"tagihan", r"resi",
    r"s[oố] đi[eệ]n tho[aạ]i", r"so dien thoai", r"sđt", r"sdt", r"li[eê]n h[eệ]", r"lh",
    r"t[oổ]ng đ[aà]i", r"tong dai", r"đ[oơ]n h[aà]ng", r"don hang",
    r"заказ\w*", r"сч[её]т\w*", r"карт\w*", r"номер\w*", r"телефон\w*", r"сумм\w*",
    r"плат[её]ж\w*", r"звон\w*", r"позвон\w*", r"договор\w*", r"посылк\w*", r"клиент\w*",
    r"рахун\w*", r"картк\w*", r"замовлен\w*", r"баланс\w*", r"доступно",
)  # fmt: skip

# Promotion words whose patterns look at their neighbours ("20% off", "save 30%").
PROMOTION_IN_CONTEXT = frozenset({"off", "save"})
PROMOTION: tuple[str, ...] = (
    r"(?<=[\d%/-] )off", r"(?<=[\d%])off", r"discount\w*", r"sale", r"saving\w*",
    r"save(?= (?:up ?to|\d|[$€£₹]))", r"deals?", r"offers?", r"promo\w*", r"coupons?",
    r"vouchers?", r"cashback", r"freebet", r"bonus", r"shop now", r"buy now",
    r"rabatt\w*", r"rabat", r"gutschein\w*", r"angebot\w*", r"réduction", r"remise", r"soldes",
    r"offre", r"descuento", r"oferta", r"rebaja\w*", r"sconto", r"offerta", r"desconto",
    r"promoção", r"korting", r"aanbieding", r"zniżk\w*", r"promocj\w*", r"скидк\w*",
    r"акци\w*", r"indirim\w*", r"kampanya\w*", r"f[iı]rsat\w*", r"tilbud", r"erbjudande",
    r"free", r"rewards?", r"t ?& ?c", r"checkout", r"exclusive", r"limited", r"prize", r"win",
    r"won", r"congratulations", r"gratis", r"kostenlos", r"gratuit\w*", r"lucky", r"winner",
    r"jackpot",
)  # fmt: skip

MEETING: tuple[str, ...] = (
    r"meeting", r"webinar", r"conference call", r"teams meeting",
    r"besprechung", r"réunion", r"reunión", r"riunione", r"vergadering", r"spotkani\w*",
    r"встреч\w*", r"совещани\w*", r"конференци\w*", r"toplant\w*",
)  # fmt: skip

BOOKING: tuple[str, ...] = (
    r"booking", r"reservation", r"check-in", r"buchung", r"réservation", r"reserva",
    r"prenotazione", r"boeking", r"rezerwacj\w*", r"бронирован\w*", r"rezervasyon\w*",
    r"bestilling",
)  # fmt: skip

# "Enter 678901 to proceed": verbs asking the reader to type the number.
ENTRY_VERB: tuple[str, ...] = (
    r"enter", r"use", r"type", r"input", r"key in", r"entrez", r"saisissez", r"utilisez",
    r"ingresa", r"introduce", r"usa", r"inserisci", r"digita", r"digite", r"insira", r"gib",
    r"verwende", r"voer", r"gebruik", r"wpisz", r"użyj", r"введите", r"используйте", r"girin",
    r"kullanın", r"masukkan", r"gunakan", r"nhập", r"输入", r"輸入", r"入力",
)  # fmt: skip

CONNECTOR: tuple[str, ...] = (
    "is", "are", "was", "ist", "lautet", "lauten", "est", "es", "è", "e", "é", "és", "er", "är",
    "on", "je", "jest", "to", "là", "la", "ni", "adalah", "ay", "your", "you", "the", "a", "an",
    "my", "our", "this", "following", "here", "it", "its", "dein", "deine", "ihr", "ihre",
    "der", "die", "das", "votre", "ton", "ta", "le", "les", "tu", "su", "seu", "sua", "o",
    "il", "tuo", "tua", "uw", "jouw", "je", "de", "het", "twój", "twoj", "ваш", "ваша", "твой",
    "это", "din", "ditt", "oma", "new", "requested", "sent", "used", "for", "use", "enter",
    "anda", "kamu", "sizin", "senin", "por", "per", "para", "pour", "für", "voor", "na",
    "del", "di", "da", "do", "of", "van", "von", "und", "and", "below", "now",
)  # fmt: skip

CURRENCY: tuple[str, ...] = (
    r"usd", r"eur", r"euro?s?", r"gbp", r"jpy", r"cny", r"rmb", r"rub", r"руб\w*", r"р",
    r"uah", r"грн", r"pln", r"z[łl]", r"czk", r"k[čc]", r"huf", r"ft", r"try", r"tl", r"inr",
    r"rs", r"vnd", r"đ", r"dong", r"krw", r"won", r"idr", r"rp", r"myr", r"rm", r"sgd",
    r"thb", r"baht", r"brl", r"mxn", r"ars", r"cop", r"clp", r"sek", r"nok", r"dkk",
    r"kr", r"chf", r"aud", r"cad", r"nzd", r"hkd", r"twd", r"ntd", r"sar", r"aed", r"egp",
    r"irr", r"irt", r"ريال", r"تومان", r"ils", r"nis", r"lei", r"ron", r"bgn", r"лв",
    r"dollars?", r"cents?", r"yuan", r"yen", r"rupees?", r"pesos?", r"reais", r"lira",
)  # fmt: skip

CURRENCY_SYMBOLS = "$€£¥₹₽₩₪₫฿₺₴₱₦₵₲₡₸₼﷼¢"

UNIT: tuple[str, ...] = (
    r"kb", r"mb", r"gb", r"tb", r"km", r"kg", r"mi", r"miles", r"pts", r"points", r"punkte",
    r"points?", r"ms", r"mah", r"mhz", r"ghz", r"kwh", r"px", r"dpi", r"cc",
)  # fmt: skip

# Scripts without spaces, or with glued prefixes and particles: matched anywhere.
CODE_CJK: tuple[str, ...] = (
    # Chinese
    "验证码", "驗證碼", "校验码", "校驗碼", "动态码", "動態碼", "认证码", "認證碼", "激活码",
    "激活碼", "确认码", "確認碼", "安全码", "安全碼", "动态密码", "動態密碼", "授权码",
    "授權碼", "登录码", "登入碼", "短信码", "密码", "密碼", "口令", "验证代码", "識別碼",
    "识别码", "交易码", "交易碼", "随机码", "隨機碼",
    # Japanese
    "認証コード", "確認コード", "コード", "パスワード", "認証番号", "暗証番号", "確認番号",
    "ワンタイム", "承認番号", "認証キー",
    # Korean
    "인증번호", "인증 번호", "인증코드", "코드", "비밀번호", "승인번호", "확인번호", "보안코드",
    "일회용",
    # Thai, Hebrew, Arabic, Persian, Urdu, Hindi, Bengali, others
    "รหัส", "โค้ด", "קוד", "סיסמ", "رمز", "كود", "كلمة المرور", "كلمة السر", "گذرواژه",
    "کوڈ", "कोड", "ओटीपी", "पासवर्ड", "কোড", "ওটিপি", "குறியீடு", "కోడ్", "კოდ", "կոդ",
)  # fmt: skip

# Persian "کد" is two letters and sits inside longer words: needs its own boundaries.
CODE_PERSIAN = r"(?<![\u0600-\u06FF])کد(?![\u0600-\u06FF])"

QUALIFIER_CJK: tuple[str, ...] = (
    "验证", "驗證", "认证", "認證", "登录", "登入", "登錄", "确认", "確認", "校验", "动态",
    "認証", "ログイン", "ワンタイム", "인증", "확인", "로그인", "본인", "ยืนยัน", "אימות",
    "כניסה", "חד פעמי", "تأكيد", "تحقق", "التحقق", "تایید", "تأیید", "ورود", "सत्यापन",
    "लॉगिन",
)  # fmt: skip

NOT_CODE_QUALIFIER_CJK: tuple[str, ...] = (
    "取件", "取货", "取貨", "提货", "兑换", "兌換", "邀请", "邀請", "优惠", "優惠", "邮政",
    "郵政", "邮编", "推荐", "推薦", "礼品", "禮品", "クーポン", "招待", "郵便", "할인", "쿠폰",
    "우편", "초대", "קופון", "הנחה", "خصم", "تخفیف", "कूपन",
)  # fmt: skip

IDENTIFIER_CJK: tuple[str, ...] = (
    "订单", "訂單", "单号", "單號", "编号", "編號", "尾号", "尾號", "卡号", "卡號", "账号",
    "帳號", "账户", "帳戶", "手机号", "手機號", "电话", "電話", "号码", "號碼", "客服", "金额",
    "金額", "余额", "餘額", "快递", "運單", "运单", "会议", "會議", "房间", "注文", "口座",
    "カード", "番号", "残高", "お問い合わせ", "予約", "주문", "계좌", "카드", "전화", "번호",
    "금액", "잔액", "고객센터", "예약", "회의", "הזמנה", "חשבון", "כרטיס", "טלפון", "מספר",
    "סכום", "طلب", "فاتورة", "حساب", "بطاقة", "هاتف", "رقم", "مبلغ", "سفارش", "فاکتور",
    "کارت", "تلفن", "شماره", "ऑर्डर", "खाता", "कार्ड", "फोन", "नंबर", "राशि", "หมายเลข",
    "บัญชี", "โทร", "ยอด",
)  # fmt: skip

PROMOTION_CJK: tuple[str, ...] = (
    "优惠", "優惠", "折扣", "促销", "促銷", "特价", "特價", "割引", "セール", "할인", "쿠폰",
    "הנחה", "خصم", "تخفیف", "छूट", "ส่วนลด",
)  # fmt: skip

MEETING_CJK: tuple[str, ...] = ("会议", "會議", "会議", "회의", "פגישה", "اجتماع", "جلسه")

BOOKING_CJK: tuple[str, ...] = (
    "预订", "預訂", "预约", "預約", "予約", "예약", "הזמנת", "حجز", "رزرو",
)  # fmt: skip

CONNECTOR_CJK = "是为為は가이은는：:（）()「」『』【】[]〔〕《》<>\"'“”‘’«»"

# Words that follow "code:" or "code is" without being a code.
NOT_A_CODE_WORD: frozenset[str] = frozenset(
    {
        "below", "above", "here", "valid", "invalid", "expired", "incorrect", "wrong", "sent",
        "required", "needed", "attached", "ready", "active", "used", "correct", "only", "for",
        "the", "your", "not", "this", "that", "shown", "listed", "following", "follows",
        "approved", "pending", "complete", "completed", "confirmed", "verified", "success",
        "successful", "failed", "denied", "declined", "unten", "oben", "gültig", "abgelaufen",
        "falsch", "dessous", "valide", "abajo", "válido", "valido", "sotto", "hieronder",
        "geldig", "ponizej", "poniżej", "ниже", "expires", "expire", "will", "has", "have",
        "cannot", "can", "must", "should", "please", "enter", "use", "copy", "paste", "click",
        "tap", "open", "visit", "go", "never", "do", "dont", "don", "share", "keep", "secret",
        "private", "confidential", "unique", "personal", "important", "thanks",
        "thank", "hello", "dear", "none", "null", "true", "false", "yes", "team", "support",
        "help", "stop", "info", "more", "link", "button", "email", "mail", "phone", "number",
        "account", "login", "password", "code", "verification", "security", "apply", "rates",
        "msg", "data", "reply", "welcome", "again", "soon", "later", "today", "tomorrow",
        "minutes", "hours", "seconds", "time", "once", "within", "after", "before", "until",
        "otp", "pin", "app", "web", "site", "online", "mobile", "device", "browser", "window",
        "sms", "text", "message", "notification", "alert", "request", "requested", "attempt",
    }
)  # fmt: skip


# --- compiled matchers --------------------------------------------------------------------

NOT_AFTER_LETTER = r"(?<![^\W\d_])"
NOT_BEFORE_LETTER = r"(?![^\W\d_])"


def _alternation(patterns: tuple[str, ...]) -> str:
    return "|".join(p.replace(r"\w*", r"[^\W\d_]*") for p in patterns)


def _anywhere(words: tuple[str, ...]) -> str:
    return "|".join(map(re.escape, sorted(words, key=len, reverse=True)))


def _by_first_letter(patterns: list[str]) -> str:
    """One alternation grouped by first letter, so that a word tries one group, not all."""
    groups: dict[str, list[str]] = {}
    others: list[str] = []
    for p in patterns:
        p = p.replace(r"\w*", r"[^\W\d_]*")
        if p[0].isalpha() and p[1:2] not in ("?", "*", "+", "{"):
            groups.setdefault(p[0], []).append(f"(?:{p[1:]})")
        else:
            others.append(f"(?:{p})")
    parts = [f"{first}(?:{'|'.join(alts)})" for first, alts in sorted(groups.items())]
    return "|".join(parts + others)


# The roles of MessageIndex, and their words in spaced and in unspaced scripts.
ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "code": (CODE, CODE_CJK),
    "qualifier": (QUALIFIER, QUALIFIER_CJK),
    "not_code": (NOT_CODE_QUALIFIER, NOT_CODE_QUALIFIER_CJK),
    "identifier": (IDENTIFIER, IDENTIFIER_CJK),
    "promotion": (PROMOTION, PROMOTION_CJK),
    "meeting": (MEETING, MEETING_CJK),
    "booking": (BOOKING, BOOKING_CJK),
}
# One pass finds every listed word; each found word is then matched against each role.
WORD_RE = re.compile(
    f"{NOT_AFTER_LETTER}(?:{_by_first_letter([p for w, _ in ROLES.values() for p in w])})"
    f"{NOT_BEFORE_LETTER}"
)
ROLE_RES = {  # matched at the word's place in the text, so that look-arounds still see
    role: re.compile(f"(?:{_alternation(words)}){NOT_BEFORE_LETTER}")
    for role, (words, _) in ROLES.items()
}
# "Sicherheitscode", "verifieringskod": a code word at the end of a compound.
COMPOUND_CODE_RE = re.compile(f"(?:{_alternation(CODE_SUFFIX)}){NOT_BEFORE_LETTER}")
UNSPACED_RE = re.compile(
    _anywhere(tuple({w for _, cjk in ROLES.values() for w in cjk})) + f"|{CODE_PERSIAN}"
)


def _unspaced_roles() -> dict[str, frozenset[str]]:
    """Roles of each unspaced entry, with those of the entries inside it (验证码 has 验证's)."""
    pairs = [(w, role) for role, (_, cjk) in ROLES.items() for w in cjk]
    return {w: frozenset(role for inner, role in pairs if inner in w) for w, _ in pairs}


UNSPACED_ROLES = _unspaced_roles()
NOT_SPACED = re.compile(r"[^\x00-\u024f\u0370-\u03ff\u0400-\u04ff\u1e00-\u1eff\u2000-\u206f]")
PERCENT_RE = re.compile(r"\d\s?%")
ENTRY_VERB_RE = re.compile(f"{NOT_AFTER_LETTER}(?:{_alternation(ENTRY_VERB)})\\s*$")
CONNECTOR_WORDS = frozenset(CONNECTOR)
CONNECTOR_CJK_RE = re.compile(
    _anywhere(("คือ", "הוא", "היא", "שלך", "שלכם", "هو", "الخاص بك", "لك", "شما", "است", "है",
               "आपका", "είναι", "σας", "σου", "ваш", "ваша"))
    + f"|[{re.escape(CONNECTOR_CJK)}]"
)  # fmt: skip

# Amounts and quantities: a currency or unit just before or after a number.
AMOUNT_BEFORE_RE = re.compile(
    f"(?:[{CURRENCY_SYMBOLS}]|{NOT_AFTER_LETTER}(?:{_alternation(CURRENCY)})\\.?) ?$", re.I
)
AMOUNT_AFTER_RE = re.compile(
    f" ?(?:[{CURRENCY_SYMBOLS}%‰°]|(?:{_alternation(CURRENCY)}|{_alternation(UNIT)})"
    f"{NOT_BEFORE_LETTER}|[年月日時时分秒元円원块塊個个号號圆])",
    re.I,
)
YEAR_CONTEXT_RE = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|©|copyright|\(c\)", re.I
)

# Grammar around a code: "Code: 1234", "Ihr Code lautet 1234", "1234 to sign in".
COPULA_RE = re.compile(r"(?:is|ist|est|es|är|er|je|lautet)(?![^\W\d_])|[是为為は:：]", re.I)
COPULA_END_RE = re.compile(
    r"(?:(?<![^\W\d_])(?:is|are|ist|lautet|est|es|är|er|je|jest|è|é|là|la|adalah|ay)"
    r"|[是为為は=:：])\s*[:：]?\s*$",
    re.I,
)
# The only words allowed between a code word and an all-letter code, and after it.
LETTER_CODE_LEFT_RE = re.compile(
    r"[\s:：=(\[【「\"'“-]*(?:(?:is|ist|est|es|är|er|je|lautet|是|为|為|は)(?![^\W\d_])"
    r"[\s:：]*)?",
    re.I,
)
LETTER_CODE_RIGHT_RE = re.compile(r"\s*(?:is (?:the|your)|[:：-])\s*", re.I)
PURPOSE_RE = re.compile(  # between a number and the qualifier naming its purpose
    r"\s*(?:to|pour|para|per|um|zum|zur|om|aby|чтобы|для|için|icin|untuk|以|で|을|를)\s*$", re.I
)
PURPOSE_AFTER_RE = re.compile(r"\s+(?:to|pour|para|per|um|zum|om|aby|чтобы|для)\s+[^\W\d_]", re.I)
KEYWORD_DASH_RE = re.compile(r"(?<![A-Za-z])(?:otp|code|pin|tan|kod)-$", re.I)


# --- where they are in one message --------------------------------------------------------

_ASCII_LETTERS = re.compile(r"[A-Za-z]+")
_ASCII_UPPERS = re.compile(r"[A-Z]+")
_BREAK = re.compile(r"[.!?;](?=\s|$)|[。！？；]|\n")  # ends of clauses
_GAP_WORD = re.compile(r"[^\W\d_]+|\d+")
_SPACELESS = re.compile(r"[\u0E00-\u0E7F\u3040-\u30FF\u3400-\u9FFF\uF900-\uFAFF]")
_LETTERS_BEFORE = re.compile(r"[^\W\d_]*$")


def _is(role: str, word: re.Match[str]) -> bool:
    """Whether the word found at ``word`` plays ``role``, judged in its place in the text."""
    hit = ROLE_RES[role].match(word.string, word.start())
    return hit is not None and hit.end() == word.end()


def _percent(low: str) -> list[int]:
    return [m.start() for m in PERCENT_RE.finditer(low)]


@dataclass(slots=True)
class Hit:
    """Where a code word is in a message."""

    start: int
    end: int
    negated: bool = False  # "tracking code", "postal code": a code of another kind


class MessageIndex:
    """Where the code words, qualifiers, clauses and lines of one message are.

    Built once per message and shared by all its candidates. ``words`` counts
    the words between two positions the way the scorer needs it.
    """

    def __init__(self, doc: str) -> None:
        self.doc = doc
        low = doc.lower()
        if len(low) != len(doc):  # "İ" lower-cases to two characters: keep positions aligned
            low = "".join(c if len(c.lower()) != 1 else c.lower() for c in doc)
        self.low = low
        found: dict[str, list[tuple[int, int]]] = {role: [] for role in ROLES}
        roles_of: dict[str, list[str]] = {}  # each distinct word is judged once
        for m in WORD_RE.finditer(low):
            word = m.group()
            roles = roles_of.get(word)
            if roles is None or word in PROMOTION_IN_CONTEXT:
                roles = roles_of[word] = [r for r in ROLES if _is(r, m)]
            for role in roles:
                found[role].append(m.span())
        compounds = []
        for m in COMPOUND_CODE_RE.finditer(low):
            head = _LETTERS_BEFORE.search(low, max(0, m.start() - 40), m.start())
            if head is not None and head.group():
                compounds.append((head.start(), m.end()))
        if NOT_SPACED.search(doc):
            for m in UNSPACED_RE.finditer(low):
                for role in UNSPACED_ROLES.get(m.group(), frozenset({"code"})):  # else Persian
                    found[role].append(m.span())
        self.qualifiers = sorted(found["qualifier"])
        self.qualifier_starts = [q[0] for q in self.qualifiers]
        self.code = self._code_hits(found, compounds)
        self.code_starts = [h.start for h in self.code]
        self.code_ends = [h.end for h in self.code]
        self.any_code = any(not h.negated for h in self.code)
        self.identifiers = sorted(i for i in found["identifier"] if not self.in_keyword(*i, False))
        self.identifier_ends = [i[1] for i in self.identifiers]
        self.promotions = sorted([a for a, _ in found["promotion"]] + _percent(low))
        self.meeting, self.booking = bool(found["meeting"]), bool(found["booking"])
        self.breaks = [m.start() for m in _BREAK.finditer(doc)]

    @cached_property
    def shouting(self) -> bool:
        """Mostly capitals: then upper-case words are just words."""
        letters = sum(map(len, _ASCII_LETTERS.findall(self.doc)))
        return letters > 20 and sum(map(len, _ASCII_UPPERS.findall(self.doc))) > 0.6 * letters

    def _code_hits(
        self, found: dict[str, list[tuple[int, int]]], compounds: list[tuple[int, int]]
    ) -> list[Hit]:
        hits: list[Hit] = []
        for start, end in compounds:
            word = self.low[start:end]
            suffix = COMPOUND_CODE_RE.search(word)
            head = word[: suffix.start() if suffix else 0].rstrip("s-")
            if head in NOT_CODE_PREFIX or any(
                len(p) >= 5 and head.endswith(p) for p in NOT_CODE_PREFIX
            ):
                continue  # postcode, Gutscheincode, barcode, encode
            found["code"].append((start, end))
        not_code_ends = sorted(e for _, e in found["not_code"])
        for start, end in sorted(set(found["code"])):
            near = not_code_ends[bisect.bisect_left(not_code_ends, start - 20) :]
            negated = any(  # "tracking code", "gift card code", "booking confirmation code"
                self.words(e, start, raw=True) <= 1 for e in near[:3] if e <= start
            )
            hits.append(Hit(start, end, negated))
        return hits

    def identifier_before(self, pos: int) -> tuple[int, int] | None:
        """The last identifier word lying in the 30 characters before ``pos``."""
        i = bisect.bisect_right(self.identifier_ends, pos)
        return self.identifiers[i - 1] if i and self.identifiers[i - 1][0] >= pos - 30 else None

    def in_keyword(self, start: int, end: int, qualifiers: bool = True) -> bool:
        """Whether the span overlaps a code word (or, with ``qualifiers``, a qualifier)."""
        i = bisect.bisect_left(self.code_starts, end)  # hits starting before ``end``...
        if any(start < h.end for h in self.code[max(0, i - 3) : i]):  # ...end after ``start``
            return True
        j = bisect.bisect_left(self.qualifier_starts, end)
        return qualifiers and any(start < b for _, b in self.qualifiers[max(0, j - 3) : j])

    def words(self, a: int, b: int, raw: bool = False) -> float:
        """Words between two positions; unless ``raw``, connectors and qualifiers count 0."""
        gap = self.doc[a:b]
        if not raw:
            lo = bisect.bisect_left(self.qualifier_starts, a)
            for qs, qe in self.qualifiers[lo : bisect.bisect_left(self.qualifier_starts, b)]:
                if qe <= b:
                    gap = gap.replace(self.doc[qs:qe], " ", 1)
            gap = CONNECTOR_CJK_RE.sub(" ", gap)
        count = 0.0
        for w in _GAP_WORD.findall(gap):
            if _SPACELESS.search(w):
                count += len(w) / 2  # Chinese, Japanese, Thai: no spaces between words
            elif raw or w.lower() not in CONNECTOR_WORDS:
                count += 1
        return count

    def clause(self, start: int, end: int) -> tuple[int, int]:
        i = bisect.bisect_left(self.breaks, start)
        j = bisect.bisect_left(self.breaks, end)
        left = self.breaks[i - 1] + 1 if i else 0
        return left, self.breaks[j] if j < len(self.breaks) else len(self.doc)

    def line(self, start: int, end: int) -> tuple[int, int]:
        right = self.doc.find("\n", end)
        return self.doc.rfind("\n", 0, start) + 1, len(self.doc) if right < 0 else right

    def code_in(self, a: int, b: int) -> bool:
        """Whether a code word (not negated) lies within ``a``..``b``."""
        lo, hi = bisect.bisect_left(self.code_starts, a), bisect.bisect_left(self.code_starts, b)
        return any(h.end <= b and not h.negated for h in self.code[lo:hi])

    def qualifier_in(self, a: int, b: int) -> bool:
        i = bisect.bisect_left(self.qualifier_starts, a)
        return i < len(self.qualifiers) and self.qualifiers[i][1] <= b
