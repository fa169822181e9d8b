/* Checking and sizing a photo on the phone, before it is sent.
 *
 * PhotoPrep.prepare(file, {maxEdge, quality}) resolves to
 *   {file, original, width, height, resized, undecodable, warnings: ["dark" | "blurred" | "small"]}
 * - the photo is decoded with createImageBitmap, turned upright from its EXIF orientation
 *   (imageOrientation: "from-image"), and checked on a small copy: too dark (mean brightness), too
 *   blurred (variance of the Laplacian) or smaller than 800 x 600 give a warning, never a refusal;
 * - a photo larger than maxEdge (PHOTO_MAX_EDGE) is resized and re-encoded as JPEG, so a 12 MP photo
 *   of several MB goes up as a few hundred KB; a small JPEG is sent as it is;
 * - a file the browser cannot decode (HEIC in most browsers) is sent as it is.
 * The server checks and cleans every photo again (EXIF stripped, re-encoded): it has the last word.
 */
(function () {
  "use strict";

  var CHECK_EDGE = 512;       // the copy the checks look at
  var DARK_MEAN = 45;         // mean brightness (0-255) under which a photo is "too dark"
  var BLUR_VARIANCE = 20;     // Laplacian variance under which a photo is "probably blurred"
  var MIN_LONG = 800;
  var MIN_SHORT = 600;

  function isHeic(file) {
    return /\.(heic|heif)$/i.test(file.name || "") || /hei[cf]/i.test(file.type || "");
  }

  function decode(file) {
    if (!window.createImageBitmap) { return Promise.reject(new Error("no createImageBitmap")); }
    return createImageBitmap(file, { imageOrientation: "from-image" });
  }

  function canvasOf(width, height) {
    var canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    return canvas;
  }

  function drawScaled(bitmap, width, height) {
    var canvas = canvasOf(width, height);
    var context = canvas.getContext("2d");
    context.imageSmoothingEnabled = true;
    context.imageSmoothingQuality = "high";
    context.drawImage(bitmap, 0, 0, width, height);
    return canvas;
  }

  function measure(bitmap) {
    // Brightness and sharpness on a small copy: fast, and the same scale whatever the camera.
    var scale = Math.min(1, CHECK_EDGE / Math.max(bitmap.width, bitmap.height));
    var width = Math.max(3, Math.round(bitmap.width * scale));
    var height = Math.max(3, Math.round(bitmap.height * scale));
    var pixels = drawScaled(bitmap, width, height).getContext("2d").getImageData(0, 0, width, height).data;
    var grey = new Float32Array(width * height);
    var total = 0;
    for (var i = 0, p = 0; i < grey.length; i += 1, p += 4) {
      grey[i] = 0.299 * pixels[p] + 0.587 * pixels[p + 1] + 0.114 * pixels[p + 2];
      total += grey[i];
    }
    var sum = 0;
    var sumSquares = 0;
    var count = 0;
    for (var y = 1; y < height - 1; y += 1) {
      for (var x = 1; x < width - 1; x += 1) {
        var k = y * width + x;
        var laplacian = 4 * grey[k] - grey[k - 1] - grey[k + 1] - grey[k - width] - grey[k + width];
        sum += laplacian;
        sumSquares += laplacian * laplacian;
        count += 1;
      }
    }
    var mean = sum / count;
    return { brightness: total / grey.length, sharpness: sumSquares / count - mean * mean };
  }

  function warningsFor(bitmap) {
    var warnings = [];
    var measured = measure(bitmap);
    if (measured.brightness < DARK_MEAN) { warnings.push("dark"); }
    if (measured.sharpness < BLUR_VARIANCE) { warnings.push("blurred"); }
    var longSide = Math.max(bitmap.width, bitmap.height);
    var shortSide = Math.min(bitmap.width, bitmap.height);
    if (longSide < MIN_LONG || shortSide < MIN_SHORT) { warnings.push("small"); }
    return warnings;
  }

  function toJpeg(canvas, quality) {
    return new Promise(function (resolve) {
      canvas.toBlob(function (blob) { resolve(blob); }, "image/jpeg", quality);
    });
  }

  function jpegName(name) {
    return (name || "photo").replace(/\.[^.\/]*$/, "") + ".jpg";
  }

  function prepare(file, options) {
    var maxEdge = (options && options.maxEdge) || 2048;
    var quality = (options && options.quality) || 0.85;
    var asItIs = { file: file, original: file, width: 0, height: 0, resized: false, undecodable: true, warnings: [] };
    if (isHeic(file)) { return Promise.resolve(asItIs); }
    return decode(file).then(function (bitmap) {
      var width = bitmap.width;
      var height = bitmap.height;
      var result = { file: file, original: file, width: width, height: height, resized: false, undecodable: false,
        warnings: warningsFor(bitmap) };
      var scale = Math.min(1, maxEdge / Math.max(width, height));
      if (scale === 1 && file.type === "image/jpeg") {
        bitmap.close();
        return result;  // already small enough: the server re-encodes it anyway
      }
      var targetWidth = Math.max(1, Math.round(width * scale));
      var targetHeight = Math.max(1, Math.round(height * scale));
      var canvas = drawScaled(bitmap, targetWidth, targetHeight);
      bitmap.close();
      return toJpeg(canvas, quality).then(function (blob) {
        canvas.width = 0;  // let the phone free the pixels now
        if (!blob || blob.size >= file.size) { return result; }
        result.file = new File([blob], jpegName(file.name), { type: "image/jpeg", lastModified: Date.now() });
        result.width = targetWidth;
        result.height = targetHeight;
        result.resized = true;
        return result;
      });
    }).catch(function () { return asItIs; });
  }

  window.PhotoPrep = { prepare: prepare, isHeic: isHeic };
}());
